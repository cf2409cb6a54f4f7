"""``MixtureResult`` and the standard errors of a fitted mixture.

Standard errors come from the observed information of the *marginal*
log-likelihood ``sum_i w_i log sum_k w_k p_k(x_i)`` (not the complete-data one
EM maximises per step): an exact autodiff Hessian at the EM solution on an
unconstrained parametrisation (weights by additive log-ratios with K-1 free,
covariances by Cholesky factors with log diagonals, constrained component
parameters by mlejax's own bijectors), then the delta method back to the
natural parameters. The Hessian is summed over chunks of the data so its memory
stays bounded for large ``n``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._inference import at_bound, free_jacobian, stderr_from_free
from .._jit import jit
from .._starts import summarise
from .._status import ConvergenceWarning, HessianWarning, Status, message, warn_if_float32
from .._tables import Table, Tabular, flat_named


def _chunk_size(n, nfree, width):
    # elements per intermediate: ~32 MB in float64 on CPU (smaller chunks run faster
    # there), ~512 MB on an accelerator (fewer, larger kernels)
    budget = 2**22 if jax.default_backend() == "cpu" else 2**26
    c = budget // max(1, nfree * width)
    return int(max(64, min(n, c)))


def marginal_information(model, params, x, w, chunk):
    """Observed information (P x P) of the marginal log-likelihood on the free scale."""
    u = model.to_free(params)

    log_joint = getattr(model, "log_joint_fast", model.log_joint)

    def ll(u, xc, wc):
        p = model.from_free(u, params)
        return jnp.sum(wc * jax.nn.logsumexp(log_joint(p, xc), axis=1))

    n = x.shape[0]
    nchunks = -(-n // chunk)
    pad = nchunks * chunk - n
    xp = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])], 0) if pad else x
    wp = jnp.concatenate([w, jnp.zeros((pad,), w.dtype)]) if pad else w
    xs = xp.reshape((nchunks, chunk) + x.shape[1:])
    ws = wp.reshape(nchunks, chunk)

    def body(h, xw):
        return h + jax.hessian(ll)(u, xw[0], xw[1]), None

    h, _ = lax.scan(body, jnp.zeros((u.shape[0], u.shape[0]), u.dtype), (xs, ws))
    return u, -0.5 * (h + h.T)


def _nan_mask(model, params):
    mask = getattr(model, "fixed_mask", None)
    return None if mask is None else mask(params)


def stderr_from_information(model, params, u, info):
    """Standard errors (a pytree like params), the covariance of the flattened natural
    params, the information on the free scale and its flags, in compiled code."""
    return tuple(stderr_from_free(jnp, params, info, free_jacobian(lambda v: model.from_free(v, params), u),
                                  nan_mask=_nan_mask(model, params)))


def _free_information(static, hyper, params, x, w, chunk):
    """What a single fit's standard errors need compiled: the model's information on the
    free scale and the Jacobian back to the natural parameters (the analysis and the
    delta method then run in numpy on the host: no machinery compiled per model)."""
    model = static.with_hyper(hyper)
    u, info = marginal_information(model, params, x, w, chunk)
    return info, free_jacobian(lambda v: model.from_free(v, params), u)


_free_information_jit = jit(_free_information, static_argnums=(0, 5))


def stderr_on_host(params, info, jac, **kw):
    """:func:`mlejax._inference.stderr_from_free` in numpy on a single fit's compiled
    ``info`` and ``jac``, its outputs as JAX arrays (as the compiled path gives them)."""
    out = stderr_from_free(np, params, np.asarray(info), np.asarray(jac), **kw)
    return jax.tree_util.tree_map(jnp.asarray, tuple(out))


def _density(model, params, x, what):
    """The fitted mixture's ``score_samples``, ``responsibilities`` or ``predict`` on
    ``x``: one compiled program per model, shape and ``what`` (eagerly, each array
    operation of the component densities would compile on its own)."""
    lj = model.log_joint(params, x)
    if what == "score_samples":
        return jax.nn.logsumexp(lj, axis=1)
    if what == "responsibilities":
        return jax.nn.softmax(lj, axis=1)
    return jnp.argmax(lj, axis=1)


_density_jit = jit(_density, static_argnums=(0, 3))


@dataclasses.dataclass(frozen=True)
class MixtureResult(Tabular):
    """The result of :func:`mlejax.em`: an immutable pytree.

    Attributes:
        params: the fitted parameters; for a Gaussian mixture ``{"weights": (K,),
            "means": (K, d), "covariances": ...}`` in scikit-learn's shapes for each
            covariance type; for other families ``{"weights": (K,), <component
            parameter>: (K, ...)}``.
        stderr: standard errors, a pytree like ``params``, from the observed
            information of the marginal log-likelihood (NaN when it is not
            positive definite, and for fixed parameters).
        cov: covariance of the flattened ``params`` (``jax.flatten_util.ravel_pytree``
            order), by the delta method.
        information: observed information on the unconstrained (free) scale.
        loglik: the TOTAL log-likelihood ``sum_i w_i log p(x_i)`` at ``params``
            (scikit-learn's ``score`` is the per-sample mean).
        converged: True when the change of the log-likelihood fell below ``tol``.
        n_iter: EM iterations (M-steps) run. status: a :class:`mlejax.Status` code.
        nobs: the number of observations (the sum of the weights).
        restart_logliks: final log-likelihood of each of the ``n_init`` restarts.
        loglik_decreased: the log-likelihood went down in some iteration (never
            expected with ``reg_covar=0``; a positive ``reg_covar`` changes the
            M-step slightly).
        hessian_not_negdef / not_identified / ill_conditioned: flags of the
            observed information (see :class:`mlejax.FitResult`); with a flag set the
            standard errors are NaN (not identified: e.g. duplicated components).
        collapsed: (K,) bool, components that collapsed onto a single point or a
            lower-dimensional subset (status ``UNBOUNDED``, converged=False, standard
            errors NaN).
        at_bound: a dict like the component parameters (bool): parameters on the
            boundary of their range (within half a standard error of a bound, as for
            single fits; e.g. a Poisson rate at 0); their standard errors are NaN.
        starts: with ``n_init > 1``, a :class:`mlejax.StartsSummary` of the restarts
            (as for ``mj.fit(..., starts=)``): how many converged, the distinct maxima,
            their log-likelihoods and how many restarts reached each, and the flags.
            Restarts reached the same maximum when their fitted densities agree (so
            permuted component labels are one maximum) to ``sqrt(100 * tol)`` in
            ``log p(x_i)`` at the first 64 observations and their log-likelihoods to
            ``100 * tol * nobs`` (EM stops short of the maximum by about that much).
            None for a single start. Its flags appear in ``message``; unlike
            ``mj.fit(..., starts=)``, EM does not warn about them (restarts reaching
            different maxima are what ``n_init`` is for).
    """

    params: Any
    stderr: Any
    cov: Any
    information: Any
    loglik: Any
    converged: Any
    n_iter: Any
    status: Any
    nobs: Any
    restart_logliks: Any
    loglik_decreased: Any
    hessian_not_negdef: Any
    not_identified: Any
    ill_conditioned: Any
    _model: Any = None  # static: the model without its dynamic hyperparameters
    nparams: int = 0
    collapsed: Any = None
    at_bound: Any = None
    starts: Any = None  # static: _starts.StartsSummary of the n_init restarts (None for one)

    @property
    def aic(self):
        return 2.0 * self.nparams - 2.0 * self.loglik

    @property
    def bic(self):
        return self.nparams * jnp.log(self.nobs) - 2.0 * self.loglik

    @property
    def n_components(self) -> int:
        return self._model.n_components

    @property
    def message(self) -> str:
        msg = message(self.status, "em")
        if self.collapsed is not None and bool(np.any(np.asarray(self.collapsed))):
            msg += f" (collapsed components: {np.flatnonzero(np.asarray(self.collapsed)).tolist()})"
        bound = _bound_names(self.params, self.at_bound)
        if bound:
            msg += (f"; {', '.join(bound)} on the boundary of the parameter space: no standard error (NaN), "
                    "Wald intervals unreliable")
        if self.stderr is not None and (bool(self.hessian_not_negdef) or bool(self.not_identified)):
            msg += (
                "; the observed information is not positive definite, so standard errors are NaN "
                "(duplicated or empty components, or not at a maximum)"
            )
        if self.starts is not None:
            msg += "".join(f"; {n}" for n in self.starts.notes())
        return msg

    # -- the fitted density ----------------------------------------------------------------
    def _x(self, x):
        return self._model.validate_data(x)

    def score_samples(self, x):
        """Log-density ``log p(x_i)`` of each observation, shape (n,)."""
        return _density_jit(self._model, self.params, self._x(x), "score_samples")

    def score(self, x):
        """TOTAL log-likelihood of ``x`` under the fitted mixture (scikit-learn's
        ``score`` is the mean: divide by ``len(x)`` to compare)."""
        return np.sum(np.asarray(self.score_samples(x)))

    def responsibilities(self, x):
        """Posterior component probabilities, (n, K), computed in log space."""
        return _density_jit(self._model, self.params, self._x(x), "responsibilities")

    def predict(self, x):
        """The most probable component of each observation, (n,)."""
        return _density_jit(self._model, self.params, self._x(x), "predict")

    def sample(self, key, n):
        """``n`` draws from the fitted mixture: ``(x, component labels)``."""
        return self._model.sample(key, self.params, int(n))

    def _table(self) -> Table:
        names, est = flat_named(self.params)
        se = flat_named(self.stderr)[1] if self.stderr is not None else [np.nan] * len(est)
        title = (f"{type(self._model).__name__} with {self.n_components} components: "
                 f"loglik={float(self.loglik):.6g}, aic={float(self.aic):.6g}, bic={float(self.bic):.6g}, "
                 f"n_iter={int(self.n_iter)}, converged={bool(self.converged)}")
        return Table(title, "parameter", tuple(names), ("estimate", "std err"),
                     list(zip(est, se)), (f"Status: {Status(int(self.status)).name}: {self.message}.",))

    def __str__(self) -> str:
        try:
            return self.summary()
        except Exception:  # noqa: BLE001  (batched or traced results)
            return "MixtureResult(batched/traced)"

    __repr__ = __str__


_META = ("_model", "nparams", "starts")
jax.tree_util.register_dataclass(
    MixtureResult,
    data_fields=[f.name for f in dataclasses.fields(MixtureResult) if f.name not in _META],
    meta_fields=list(_META),
)


def build_result(model, out, x, w, *, tol, stderr=True, batch_item=False):
    """Host side after the compiled EM (``out``: an :class:`EMOutput`): errors,
    warnings, standard errors. ``batch_item``: one dataset of ``em_batch``, where
    NaN/inf data are a status (``NONFINITE_DATA``, no standard errors), not an error."""
    if not bool(out.finite_data):
        if batch_item:
            return _result(model, out, x, None, (jnp.asarray(False),) * 3)
        nbad = int(np.sum(~np.isfinite(np.asarray(x))))
        raise ValueError(f"data contain NaN or inf ({nbad} values); remove or impute those rows.")
    status = int(out.status)
    reg = getattr(model, "reg_covar", None)
    comps = np.flatnonzero(np.asarray(out.collapsed)).tolist()
    if status == Status.UNBOUNDED and not (reg is not None and float(reg) == 0 and not batch_item):
        warnings.warn(
            f"EM: component(s) {comps} collapsed onto a single point or a lower-dimensional subset "
            "(their mass sits on at most as many distinct points as the data have dimensions and "
            "their scale shrank towards 0 relative to the data), where the log-likelihood grows "
            "without bound: the result is not a maximum (status UNBOUNDED, converged=False, standard "
            "errors NaN). Use fewer components (n_components), put a prior or a lower bound on the "
            "component scale (or a larger reg_covar for a Gaussian mixture), remove duplicated "
            "points, or start elsewhere (init, n_init).",
            ConvergenceWarning,
            stacklevel=3,
        )
    elif status in (Status.NONFINITE, Status.UNBOUNDED):
        fix = (
            "reg_covar=0 leaves no protection: set reg_covar > 0 (e.g. 1e-6, the default)"
            if reg is not None and float(reg) == 0
            else "increase reg_covar"
            if reg is not None
            else "constrain the component parameters or start from other values"
        )
        raise ValueError(
            f"EM failed: a mixture component{f' {comps}' if comps else ''} collapsed (its covariance "
            "or parameters became singular, e.g. a component sitting on a single point or a "
            "lower-dimensional subset). "
            f"{fix[0].upper() + fix[1:]}, use fewer components (n_components), or start elsewhere "
            f"(init, n_init). Stopped after {int(out.n_iter)} iterations."
        )
    if status in (Status.MAX_ITER, Status.PRECISION_LOSS) and tol > 0:
        warnings.warn(
            f"EM did not converge in {int(out.n_iter)} iterations (the best of the initialisations "
            "is returned, converged=False): raise maxiter, loosen tol, or try more initialisations "
            "(n_init).",
            ConvergenceWarning,
            stacklevel=3,
        )
    params = out.params
    se_cov_info = None
    flags = (jnp.asarray(False),) * 3
    if stderr and status == Status.UNBOUNDED:  # a collapse: no standard errors to trust
        nan = jax.tree_util.tree_map(lambda a: jnp.full(jnp.shape(a), jnp.nan, jnp.result_type(a)), params)
        return _result(model, out, x, (nan, None, None), flags, starts=restarts_summary(out, tol))
    if stderr:
        warn_if_float32(jnp.result_type(out.loglik), 3)
        nfree = model.nparams(x)
        width = model.n_components * max(1, math.prod(x.shape[1:]))
        chunk = _chunk_size(x.shape[0], nfree, width)
        w1 = jnp.ones((x.shape[0],), x.dtype) if w is None else w
        info, jac = _free_information_jit(model.static(), model.hyper(), params, x, w1, chunk)
        *se_cov_info, nd, ni, ic = stderr_on_host(params, info, jac, nan_mask=_nan_mask(model, params))
        flags = (nd, ni, ic)
        if bool(flags[0]) or bool(flags[1]):
            warnings.warn(
                "the observed information of the mixture is not positive definite: standard errors "
                "are NaN. Causes: an empty or duplicated component, too many components for the "
                "data, or EM stopped away from a maximum (raise maxiter / lower tol).",
                HessianWarning,
                stacklevel=3,
            )
    bound = None if status == Status.UNBOUNDED else boundary_flags(model, params, se_cov_info[0] if se_cov_info else None)
    names = _bound_names(params, bound)
    if names:
        if se_cov_info is not None:
            se_cov_info[0] = {n: jnp.where(bound[n], jnp.nan, a) if n in bound else a
                              for n, a in se_cov_info[0].items()}
        warnings.warn(
            f"EM: {', '.join(names)} on the boundary of the parameter space (within half a standard "
            "error of a bound, e.g. a Poisson rate at 0 for a component that takes only zeros): the "
            "likelihood is maximised at the edge, so the standard errors there are NaN and Wald "
            "intervals are unreliable. Use fewer components, or fix the parameter at the bound "
            "(mj.Fixed) if that is the model you mean.",
            HessianWarning,
            stacklevel=3,
        )
    # The restarts' flags are reported (res.starts, res.message), not warned about: with
    # n_init, restarts reaching different maxima are expected (and select_components
    # runs many fits).
    return _result(model, out, x, se_cov_info, flags, bound, restarts_summary(out, tol))


def boundary_flags(model, params, stderr):
    """Component parameters on the boundary of their constraint: a dict like the component
    parameters (bool), by the rule single fits use (:func:`mlejax._inference.at_bound`:
    within half a standard error of a bound, or numerically on it without one); None
    for models without bounded parameters (a Gaussian mixture's collapse is
    :func:`mlejax.mixture._em.collapsed_components`)."""
    bounds = getattr(model, "bounds", None)
    if bounds is None:
        return None
    out = {}
    for name, (lo, hi) in bounds().items():
        v = np.asarray(params[name], np.float64)
        se = np.full(v.shape, np.nan) if stderr is None else np.asarray(stderr[name], np.float64)
        out[name] = np.asarray(at_bound(v, se, lo, hi, np))
    return out


def _bound_names(params, bound) -> list:
    """``["rate[0] = 6.5e-25", ...]`` for the flagged entries of ``bound``."""
    if not bound:
        return []
    out = []
    for name, flags in bound.items():
        v = np.asarray(params[name])
        for idx in zip(*np.nonzero(np.asarray(flags))):
            out.append(f"{name}[{', '.join(map(str, idx))}] = {v[idx]:.3g}")
    return out


def restarts_summary(out, tol):
    """The :class:`mlejax.StartsSummary` of EM's restarts (None for a single one)."""
    if out.restart_status is None or np.shape(out.restart_status)[0] < 2:
        return None
    converged = np.asarray(out.restart_status) == int(Status.SUCCESS)
    return summarise(out.restart_logliks, converged, out.restart_fingerprints,
                     loglik_atol=100.0 * tol * float(out.nobs), phi_atol=max(math.sqrt(100.0 * tol), 1e-6))


def _result(model, out, x, se_cov_info, flags, bound=None, starts=None):
    se, cov, info = se_cov_info or (None, None, None)
    return MixtureResult(
        params=out.params,
        stderr=se,
        cov=cov,
        information=info,
        loglik=out.loglik,
        converged=out.converged,
        n_iter=out.n_iter,
        status=out.status,
        nobs=out.nobs,
        restart_logliks=out.restart_logliks,
        loglik_decreased=out.decreased,
        hessian_not_negdef=flags[0],
        not_identified=flags[1],
        ill_conditioned=flags[2],
        _model=model.static(),
        nparams=model.nparams(x),
        collapsed=out.collapsed,
        at_bound=bound,
        starts=starts,
    )
