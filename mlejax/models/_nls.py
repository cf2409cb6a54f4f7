"""Nonlinear least squares as a Gaussian likelihood: ``y = f(theta, x) + eps``.

Two stages, both compiled: a Levenberg-Marquardt search on the residual sum of
squares (robust far from the optimum; it runs through the same driver loop as
every solver), then ``mj.fit``'s exact Newton on the Gaussian log-likelihood with
sigma profiled out, which certifies the optimum (status, flags) and gives the
observed information. Jacobians are exact (autodiff).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import parametrize
from .._fit import fit
from .._jit import model_jit, weak_cached
from .._modelfit import (
    check_finite_array,
    check_weights,
    fits_exactly,
    quiet_fit,
    remark,
    with_notes,
)
from .._starts import start_values, warn_starts
from .._status import Status
from ..solvers._driver import minimise
from ..solvers._lm import LevenbergMarquardt

RUNNING = int(Status.RUNNING)


def _residuals(f, theta, data):
    x, y, sw = data
    return sw * (y - f(theta, x))


@weak_cached
def profile_loglik(model):
    """The Gaussian log-likelihood with sigma at its MLE, RSS/n (precision weights w):
    ``-n/2 (log(2 pi RSS/n) + 1) + 1/2 sum(log w)``, over the ``n`` points of positive
    weight (a zero weight drops its point). One function per model ``f`` (``model()``
    returns it; held weakly, so the compiled fits go with the model)."""

    def loglik(theta, data):
        r = _residuals(model(), theta, data)
        sw = data[2]
        n = jnp.sum(sw > 0)
        rss = jnp.sum(r**2)
        return -0.5 * n * (jnp.log(2 * jnp.pi * rss / n) + 1.0) + jnp.sum(
            jnp.where(sw > 0, jnp.log(jnp.where(sw > 0, sw, 1.0)), 0.0))

    return loglik


class _Resid(NamedTuple):
    """``u -> residuals`` for the LM stage, hashable by its static parts only."""

    f: Any
    spec: Any


def _lm(dyn, data, maxiter, *, f, spec):
    def resid(u):
        return _residuals(f, spec.to_natural(u, dyn), data)

    solver = LevenbergMarquardt(resid)
    st = minimise(solver, None, spec.to_unconstrained(dyn), jnp.zeros((), data[1].dtype), maxiter)
    return spec.to_natural(st.x, dyn), st.n_iter


_lm_jit = model_jit(_lm, "f", static_argnames=("spec",))


def _gauss_newton(f, spec, dyn, params, data, nobs):
    """Gauss-Newton covariance s^2 (J'WJ)^-1, s^2 = RSS/(n-p): what NIST certifies."""
    phi = spec.natural_flat(params)
    resid = lambda q: _residuals(f, spec.from_natural_flat(q, dyn), data)  # noqa: E731
    r = resid(phi)
    jac = jax.jacfwd(resid)(phi)
    k = phi.shape[0]
    rss = jnp.sum(r**2)
    s2 = rss / (nobs - k) if nobs > k else jnp.nan
    _, sv, vt = jnp.linalg.svd(jac, full_matrices=False)
    good = sv > sv[0] * k * jnp.finfo(sv.dtype).eps
    inv = (vt.T / jnp.where(good, sv**2, 1.0)) @ vt
    cov = jnp.where(jnp.all(good), s2 * inv, jnp.nan)
    return cov, rss, s2


_gn_jit = model_jit(_gauss_newton, "f", static_argnames=("spec", "nobs"))


def _better_or_tie(a, b) -> bool:
    """Prefer ``a`` unless ``b`` converged where ``a`` did not, or reached a clearly
    higher log-likelihood (beyond rounding) with the same convergence."""
    if bool(a.converged) != bool(b.converged):
        return bool(a.converged)
    la, lb = float(a.loglik), float(b.loglik)
    if not np.isfinite(lb):
        return True
    return not (np.isfinite(lb) and (not np.isfinite(la) or lb > la + 1e-9 * max(1.0, abs(la))))


def curve_fit(f, x, y, init, *, weights=None, maxiter=None, tol=None, lm_maxiter=2000, starts=None, key=None):
    """Nonlinear least squares ``y = f(theta, x) + eps``, eps ~ N(0, sigma^2 / w), by
    maximum likelihood with exact derivatives.

    Args:
        f: ``f(theta, x) -> predictions`` (shape of ``y``), a pure JAX function. Reuse
            the same function object across calls: the compiled fit is cached on it.
        x: the predictors, any array (or pytree) ``f`` accepts.
        y: the responses, shape ``(n,)``.
        init: starting values, a pytree (constraint markers allowed).
        weights: optional precision weights ``w_i`` (the variance of ``y_i`` is
            ``sigma^2 / w_i``), e.g. ``1 / known_sd**2``.
        maxiter, tol: for the final Newton stage (see ``mj.fit``).
        lm_maxiter: iteration limit of the Levenberg-Marquardt search.
        starts, key: a multi-start fit, as in :func:`mlejax.fit` (a number of starts
            drawn around ``init`` with ``key``, a function ``key -> init`` with a stack
            of keys, or a stack of starts): the Newton stage runs from every start and
            from the Levenberg-Marquardt point (one more start) in one compiled call;
            the best converged maximum is returned and ``res.starts`` summarises the
            distinct maxima.

    Returns:
        A :class:`ModelResult`. ``params``/``stderr``/``cov`` are the maximum-likelihood
        estimates and observed-information standard errors (sigma profiled out: the
        inverse of minus the Hessian of the profile log-likelihood, which equals the
        theta block of the full inverse information). ``extras`` holds the
        Gauss-Newton ones, which NIST and most least-squares software report:
        ``stderr_gn``/``cov_gn`` (``s^2 (J'WJ)^-1``, ``s^2 = RSS/(n-p)``), ``rss``,
        ``sigma`` (= s) and ``sigma_mle`` (= sqrt(RSS/n)), ``df_resid`` and
        ``lm_iter``. ``converged`` is True only if the Newton stage certifies a strict
        local maximum; a start that leads to a plateau or a wrong stationary point is
        reported as not converged, with a warning.

    Both the Levenberg-Marquardt point and the user's start are polished by Newton;
    the higher certified maximum is returned.

    ``res.starts`` with ``starts=``: e.g. ``mj.curve_fit(f, x, y, init, starts=16,
    key=jax.random.key(0))`` (see "Local optima" in the README).

    Examples:
        >>> import jax.numpy as jnp, numpy as np, mlejax as mj
        >>> x = np.linspace(0.0, 4.0, 20)
        >>> y = 3.0 * np.exp(-0.7 * x) + 0.01 * np.sin(7 * x)    # a small deterministic "noise"
        >>> res = mj.curve_fit(lambda t, x: t["a"] * jnp.exp(-t["k"] * x), x, y, {"a": 1.0, "k": 0.1})
        >>> round(float(res.params["a"]), 2), round(float(res.params["k"]), 2)
        (3.0, 0.7)
    """
    if not callable(f):
        raise TypeError(f"f must be a function f(theta, x) -> predictions; got {type(f).__name__}.")
    y = check_finite_array("y", y)
    if y.ndim != 1:
        raise ValueError(f"y has shape {y.shape}; give a 1-d array of responses.")
    w = check_weights(weights, y.shape[0])
    w = np.ones(y.shape[0]) if w is None else w
    n = int(np.sum(w > 0))  # a zero weight drops its point
    x = jax.tree_util.tree_map(lambda a: jnp.asarray(check_finite_array("x", a)), x)
    spec, dyn = parametrize(init)
    dtype = dyn.values[0].dtype
    data = (x, jnp.asarray(y, dtype), jnp.sqrt(jnp.asarray(w, dtype)))
    pred = jax.eval_shape(f, spec.to_natural(spec.to_unconstrained(dyn), dyn), x)
    if getattr(pred, "shape", None) != y.shape:
        raise ValueError(
            f"f(theta, x) returns shape {getattr(pred, 'shape', type(pred).__name__)} but y has "
            f"shape {y.shape}; f must give one prediction per response."
        )
    start, lm_iter = _lm_jit(dyn, data, jnp.asarray(lm_maxiter, jnp.int32), f=f, spec=spec)
    ll = profile_loglik(f)
    # Two routes to the optimum, the same compiled Newton fit: from the Levenberg-Marquardt
    # point, and straight from the user's start (Newton's exact curvature escapes plateaus
    # that trap LM, e.g. NIST BoxBOD start 1). The better converged maximum wins.
    if starts is None:
        fits = [
            quiet_fit(fit, ll, init_, data, maxiter=maxiter, tol=tol, nobs=n)
            for init_ in (remark(spec, dyn, start), init)
        ]
        res = fits[0] if _better_or_tie(fits[0], fits[1]) else fits[1]
    else:
        stack = _with_lm_point(start_values(starts, key, spec, dyn), start, spec, dyn)
        res = quiet_fit(fit, ll, init, data, maxiter=maxiter, tol=tol, nobs=n, starts=stack)
    cov_gn, rss, s2 = _gn_jit(dyn=res._dyn, params=res.params, data=data, f=f, spec=res._spec, nobs=n)
    se = jnp.sqrt(jnp.diag(cov_gn))
    nan_dyn = res._dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in res._dyn.values))
    extras = dict(
        stderr_gn=res._spec.from_natural_flat(se, nan_dyn),
        cov_gn=cov_gn,
        rss=rss,
        sigma=jnp.sqrt(s2),
        sigma_mle=jnp.sqrt(rss / n),
        df_resid=n - res.nparams,
        lm_iter=lm_iter,
    )
    notes = [_EXACT_FIT + (f" ({n} observations for {res.nparams} parameters: f can interpolate them)"
                           if n <= res.nparams else "")] if fits_exactly(rss, y, w) else []
    out = with_notes(res, extras, notes, dtype, status=Status.UNBOUNDED)
    warn_starts(out.starts)
    return out


_EXACT_FIT = ("f fits every response exactly (residual sum of squares zero up to rounding, e.g. "
              "simulated y without noise): sigma's MLE is 0 and the Gaussian log-likelihood is "
              "unbounded. The estimates are the exact fit, with no sampling variance to estimate "
              "(stderr_gn is 0, stderr NaN). Check y, or add the noise a simulation left out")


def _with_lm_point(values, lm_params, spec, dyn):
    """The stack of starts (one array per leaf) with the Levenberg-Marquardt point as its
    first row, when that point lies strictly inside the constraints; as a pytree."""
    lm = spec.treedef.flatten_up_to(lm_params)
    if bool(jnp.all(jnp.isfinite(spec.to_unconstrained(dyn._replace(values=tuple(lm)))))):
        values = [jnp.concatenate([jnp.asarray(a, v.dtype)[None], v]) for a, v in zip(lm, values)]
    return spec.unflatten_leaves(values)


__all__ = ["curve_fit"]
