"""``mj.fit``: validate on the host, run one compiled computation, report honestly."""

from __future__ import annotations

import warnings
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

from ._constraints import parametrize
from ._inference import (
    COV_TYPES,
    analyse_information,
    at_bound,
    cluster_codes,
    covariance,
    natural_loglik,
    observed_information,
    per_observation_scores,
)
from ._result import FitResult
from ._status import (
    ConvergenceWarning,
    HessianWarning,
    Status,
    warn_if_float32,
)
from .solvers._driver import minimise
from .solvers._solvers import Objective, OptaxAscent, make_solver

_DEFAULT_MAXITER = {"newton": 200, "lbfgs": 2000, "optax": 10_000}
_DEFAULT_TOL = {"newton": 1e-10, "lbfgs": 1e-8, "optax": 1e-6}


class _ById:
    """Hashable-by-identity wrapper, so any callable can key the jit cache."""

    __slots__ = ("fn", "__weakref__")

    def __init__(self, fn):
        self.fn = fn

    def __hash__(self):
        return id(self.fn)

    def __eq__(self, other):
        return isinstance(other, _ById) and other.fn is self.fn

    def __call__(self, *args):
        return self.fn(*args)


class _Penalised:
    """``loglik(params, data) + log_prior(params)``: the MAP objective. Hashable from
    its parts, so the compiled fit is reused across calls."""

    __slots__ = ("loglik", "log_prior", "__weakref__")

    def __init__(self, loglik, log_prior):
        self.loglik, self.log_prior = loglik, log_prior

    def __hash__(self):
        return hash((self.loglik, self.log_prior))

    def __eq__(self, other):
        return (
            isinstance(other, _Penalised)
            and other.loglik == self.loglik
            and other.log_prior == self.log_prior
        )

    def __call__(self, params, data):
        lp = self.log_prior(params)
        if jnp.shape(lp) != ():
            raise TypeError(
                "log_prior must return a scalar (the total log-prior density); it returned "
                f"shape {jnp.shape(lp)}. Sum over parameters, e.g. jnp.sum(logpdf)."
            )
        return self.loglik(params, data) + lp


def wrap_loglik(loglik) -> _ById:
    if isinstance(loglik, _ById):
        return loglik
    if not callable(loglik):
        raise TypeError(
            f"loglik must be a function loglik(params, data) -> scalar; got {type(loglik).__name__}."
        )
    return _ById(loglik)


def objective_loglik(loglik, log_prior=None):
    """The function mlejax maximises: the log-likelihood, plus a log-prior for MAP."""
    ll = wrap_loglik(loglik)
    if log_prior is None:
        return ll
    if not callable(log_prior):
        raise TypeError(
            f"log_prior must be a function log_prior(params) -> scalar; got "
            f"{type(log_prior).__name__}."
        )
    return _Penalised(ll, _ById(log_prior))


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def prepare_data(data):
    """Turn data leaves into arrays; refuse what is not numeric, naming the leaf."""

    def conv(path, leaf):
        where = "data" + jax.tree_util.keystr(path)
        if isinstance(leaf, (str, bytes)):
            raise TypeError(f"{where} is a string; data leaves must be numbers or numeric arrays.")
        if isinstance(leaf, jax.Array):
            arr = leaf
        else:
            try:
                arr = np.asarray(leaf)
            except Exception as e:  # noqa: BLE001
                raise TypeError(f"{where} of type {type(leaf).__name__} is not an array.") from e
            if arr.dtype == object or not (
                np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
            ):
                raise TypeError(
                    f"{where} has dtype {arr.dtype}; data leaves must be numeric arrays."
                )
        return arr

    return jax.tree_util.tree_map_with_path(conv, data)


def infer_nobs(data):
    """The leading-axis length shared by most data leaves (ties: the largest)."""
    sizes = [jnp.shape(a)[0] for a in jax.tree_util.tree_leaves(data) if jnp.ndim(a) >= 1]
    if not sizes:
        return None
    counts = Counter(sizes)
    return max(counts, key=lambda n: (counts[n], n))


def _float_leaves(data):
    return [
        a for a in jax.tree_util.tree_leaves(data) if jnp.issubdtype(jnp.result_type(a), jnp.inexact)
    ]


def _check_output(out):
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise TypeError(
            "loglik must return one scalar (the total log-likelihood); it returned a "
            f"{type(out).__name__}: {out}."
        )
    if out.shape != ():
        raise TypeError(
            "loglik must return a scalar (the total log-likelihood); it returned shape "
            f"{out.shape} with dtype {out.dtype}. Sum over observations, e.g. jnp.sum(logpdf)."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(
            f"loglik must return a real floating-point scalar; it returned dtype {out.dtype}."
        )


def _shapes_note(params, data) -> str:
    def show(tree):
        return ", ".join(
            f"{jax.tree_util.keystr(p) or '(root)'}: {jnp.shape(a)} {jnp.result_type(a)}"
            for p, a in jax.tree_util.tree_leaves_with_path(tree)
        ) or "none"

    return (
        "mlejax: this error was raised by loglik(params, data) at the starting values, with "
        f"params leaves [{show(params)}] and data leaves [{show(data)}]. Check that the "
        "shapes of init and data line up with what loglik expects."
    )


def core(dyn, data, tol, maxiter, clusters, *, loglik, spec, solver, cov_type, nobs, n_clusters,
         check_finite):
    """The whole fit as one pure function (jit-compiled by ``fit``; vmap-able)."""
    x0 = spec.to_unconstrained(dyn)
    params0 = spec.to_natural(x0, dyn)
    try:
        out0 = jax.eval_shape(loglik, params0, data)
    except Exception as e:  # the user's own exception, unchanged, with context added
        e.add_note(_shapes_note(params0, data))
        raise
    _check_output(out0)
    obj = Objective(lambda x: -loglik(spec.to_natural(x, dyn), data))  # the one sign flip
    st = minimise(solver, obj, x0, tol, maxiter)

    params = spec.to_natural(st.x, dyn)
    phi = spec.natural_flat(params)
    hess = solver.hessian(st.solver_state)
    if hess is not None and spec.is_identity:
        info = hess  # the Hessian of -loglik at the optimum is the observed information
    else:
        info = observed_information(natural_loglik(loglik, spec, dyn, data), phi)
    an = analyse_information(info)
    scores = None
    if cov_type != "observed":
        scores = per_observation_scores(loglik, spec, dyn, data, phi, nobs)
    cov = covariance(cov_type, an, scores, clusters, n_clusters)
    var = jnp.diag(cov)
    se_flat = jnp.where(var >= 0, jnp.sqrt(jnp.abs(var)), jnp.nan)
    low, high = spec.bounds_flat(dyn)
    params_at_bound = at_bound(phi, se_flat, low, high)

    # A point that passed the gradient test while the exact Newton step still moves a
    # parameter (not at a bound) by more than 1e-3 of its size is no maximum: the
    # log-likelihood keeps rising ever more slowly towards a supremum at infinity.
    # natural-scale gradient by the chain rule (every transform is elementwise)
    _, dphi = jax.jvp(lambda u: spec.natural_flat(spec.to_natural(u, dyn)), (st.x,),
                      (jnp.ones_like(st.x),))
    grad_nat = jnp.where(dphi != 0, -st.g / jnp.where(dphi != 0, dphi, 1.0), 0.0)
    # the Newton step of the parameters not at a bound, with those at a bound held
    held = params_at_bound[:, None] | params_at_bound[None, :]
    info_free = jnp.where(held, jnp.eye(phi.shape[0], dtype=phi.dtype), info)
    step = jnp.linalg.solve(info_free, jnp.where(params_at_bound, 0.0, grad_nat))
    diverging = jnp.any(jnp.abs(step) / jnp.maximum(jnp.abs(phi), 1.0) > 1e-3)

    status = st.status
    ok = status == int(Status.SUCCESS)
    status = jnp.where(ok & an.not_negdef, int(Status.NOT_MAXIMUM), status)
    status = jnp.where(ok & an.not_identified, int(Status.NOT_IDENTIFIED), status)
    diverging = ok & ~an.not_negdef & ~an.not_identified & diverging
    status = jnp.where(diverging, int(Status.DIVERGING), status)
    finite_leaves = tuple(jnp.all(jnp.isfinite(a)) for a in _float_leaves(data))
    if check_finite and finite_leaves:
        status = jnp.where(jnp.all(jnp.stack(finite_leaves)), status, int(Status.NONFINITE_DATA))
    status = status.astype(jnp.int32)
    # Only a fit that succeeded has trustworthy standard errors: any other status gives
    # NaN (the raw ones, from the information kept in the result: res.with_cov("observed")).
    trusted = status == int(Status.SUCCESS)
    cov = jnp.where(trusted, cov, jnp.nan)
    se_flat = jnp.where(trusted, se_flat, jnp.nan)
    nan_dyn = dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in dyn.values))
    stderr = spec.from_natural_flat(se_flat, nan_dyn)
    out = dict(
        params=params,
        stderr=stderr,
        cov=cov,
        information=info,
        loglik=-st.f if not isinstance(loglik, _Penalised) else -st.f - loglik.log_prior(params),
        converged=status == int(Status.SUCCESS),
        n_iter=st.n_iter,
        grad_norm=jnp.linalg.norm(st.g),
        status=status,
        hessian_not_negdef=an.not_negdef,
        not_identified=an.not_identified,
        ill_conditioned=an.ill_conditioned,
        condition_number=an.condition_number,
        null_vector=an.null_vector,
        params_at_bound=params_at_bound,
        x=st.x,
    )
    return out, finite_leaves


_core_jit = jax.jit(
    core,
    static_argnames=("loglik", "spec", "solver", "cov_type", "nobs", "n_clusters", "check_finite"),
)


def _resolve_options(method, maxiter, tol):
    solver = make_solver(method)
    key = "optax" if isinstance(solver, OptaxAscent) else solver.name
    maxiter = _DEFAULT_MAXITER[key] if maxiter is None else maxiter
    tol = _DEFAULT_TOL[key] if tol is None else tol
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 0:
        raise ValueError(f"maxiter={maxiter!r} must be a non-negative integer.")
    if _is_concrete(tol) and not (np.isfinite(float(tol)) and float(tol) >= 0):
        raise ValueError(f"tol={tol!r} must be a finite number >= 0.")
    return solver, int(maxiter), tol


def check_options(loglik, log_prior, method, maxiter, tol, cov):
    """The options ``fit`` and ``fit_batch`` share, validated:
    ``(objective, solver, maxiter, tol)``."""
    ll = objective_loglik(loglik, log_prior)
    if log_prior is not None and cov != "observed":
        raise ValueError("with log_prior, only cov='observed' (the Laplace approximation) applies.")
    solver, maxiter, tol = _resolve_options(method, maxiter, tol)
    if cov not in COV_TYPES:
        raise ValueError(f"cov={cov!r} is not known; use one of {COV_TYPES}.")
    return ll, solver, maxiter, tol


def core_static(ll, spec, solver, cov, nobs, n_clusters, check_finite) -> dict:
    """The static (jit cache key) arguments of :func:`core`."""
    return dict(loglik=ll, spec=spec, solver=solver, cov_type=cov, nobs=nobs,
                n_clusters=n_clusters, check_finite=bool(check_finite))


def check_nobs(nobs, data0) -> int:
    """``nobs`` as given (a positive integer), or inferred from the data."""
    if nobs is None:
        return infer_nobs(data0)
    if isinstance(nobs, bool) or not isinstance(nobs, (int, np.integer)) or nobs < 1:
        raise ValueError(f"nobs={nobs!r} must be a positive integer (the number of observations).")
    return int(nobs)


def result_meta(spec, nobs, solver, cov, ll) -> dict:
    """The static fields of a fit result (``FitResult``, ``BatchFitResult``)."""
    return dict(names=spec.names, nobs=nobs, method=getattr(solver, "name", "optax"),
                cov_type=cov, _spec=spec, _loglik=ll)




def fit(
    loglik,
    init,
    data=None,
    *,
    method="newton",
    maxiter=None,
    tol=None,
    cov="observed",
    clusters=None,
    nobs=None,
    check_finite=True,
    log_prior=None,
) -> FitResult:
    """Maximise ``loglik(params, data)`` from ``init`` and return a :class:`FitResult`.

    Args:
        loglik: a pure JAX function returning the total log-likelihood (a scalar).
            Reuse the same function object across calls: the compiled fit is cached
            on it, on the shapes of ``init``/``data`` and on the options, so a second
            call with new numbers does not recompile.
        init: a pytree of starting values (floats; integers are cast to float). A
            leaf may be wrapped in ``mj.Positive``, ``mj.Bounded`` or ``mj.Fixed``.
        data: any pytree of arrays, passed to ``loglik`` unchanged (integer data stay
            integer so they can index). Leaves sharing a leading axis are the
            observations (``nobs``; OPG / sandwich scores).
        method: ``"newton"`` (exact Hessian, damped; default), ``"lbfgs"``, or any
            ``optax.GradientTransformation`` for gradient ascent.
        maxiter: iteration limit (default 200 Newton, 2000 L-BFGS, 10000 optax).
        tol: convergence when ``max_i |g_i| max(|x_i|, 1) / max(|loglik|, 1) <= tol``
            on the optimiser's scale (default 1e-10 Newton, 1e-8 L-BFGS, 1e-6 optax).
        cov: ``"observed"`` (inverse observed information), ``"opg"`` (outer product
            of per-observation scores), ``"sandwich"`` (Huber-White) or ``"cluster"``
            (cluster-robust; give ``clusters``). The per-observation covariances need
            the total log-likelihood to be the sum over observations.
        clusters: one label per observation, for ``cov="cluster"``.
        nobs: number of observations, if the leading axis of the data is not it.
        check_finite: refuse data containing NaN/inf (set False if ``loglik``
            masks them itself).
        log_prior: ``log_prior(params) -> scalar`` added to the log-likelihood: the fit
            is then the MAP estimate (a penalised likelihood: a Gaussian prior is a
            ridge penalty, a Laplace prior a lasso one), and ``information``/``cov``
            come from the Hessian of the log-posterior (the Laplace approximation).
            ``loglik`` reports the log-likelihood alone at the estimate.

    Raises:
        TypeError/ValueError at call time for bad input, naming the argument; a
        ``ValueError`` if the log-likelihood is not finite at the start. Problems
        during the fit are reported in ``status``/``message`` and warned about.
    """
    ll, solver, maxiter, tol = check_options(loglik, log_prior, method, maxiter, tol, cov)
    spec, dyn = parametrize(init)
    data = prepare_data(data)
    n = check_nobs(nobs, data)
    codes, n_clusters = cluster_codes(clusters, n, cov)
    dtype = dyn.values[0].dtype
    out, finite_leaves = _core_jit(
        dyn,
        data,
        jnp.asarray(tol, dtype),
        jnp.asarray(maxiter, jnp.int32),
        codes,
        **core_static(ll, spec, solver, cov, n, n_clusters, check_finite),
    )
    res = FitResult(**out, _dyn=dyn, _data=data, **result_meta(spec, n, solver, cov, ll))
    if _is_concrete(res.status):
        _raise_or_warn(res, data, finite_leaves)
    return res


def _raise_or_warn(res: FitResult, data, finite_leaves, stacklevel=3):
    status = int(res.status)
    if status == Status.NONFINITE_DATA:
        bad = []
        for path, a in jax.tree_util.tree_leaves_with_path(data):
            if jnp.issubdtype(jnp.result_type(a), jnp.inexact):
                nbad = int(np.sum(~np.isfinite(np.asarray(a))))
                if nbad:
                    bad.append(f"data{jax.tree_util.keystr(path)} ({nbad} NaN/inf values)")
        raise ValueError(
            f"{', '.join(bad)}: the data contain NaN or inf. Remove or impute those "
            "observations, or handle them inside loglik and pass check_finite=False."
        )
    if status == Status.NONFINITE_START:
        raise ValueError(
            f"the log-likelihood (or its gradient) is not finite at the starting values "
            f"(loglik = {float(res.loglik)}). Choose init inside the support of the model "
            "(e.g. positive scales, probabilities in (0, 1)) or check loglik for log(0)."
        )
    if status in (Status.NOT_MAXIMUM, Status.NOT_IDENTIFIED):
        warnings.warn(res.message, HessianWarning, stacklevel=stacklevel)
    elif status != Status.SUCCESS:
        warnings.warn(
            f"{res.message} (after {int(res.n_iter)} iterations, gradient norm "
            f"{float(res.grad_norm):.3g}).",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    elif (bool(res.ill_conditioned) or bool(np.any(np.asarray(res.params_at_bound)))
          or bool(res.hessian_not_negdef)):
        warnings.warn(res.message, HessianWarning, stacklevel=stacklevel)
    if res.nobs is not None and res.nobs <= res.nparams:
        warnings.warn(
            f"only {res.nobs} observations for {res.nparams} parameters: the covariance is "
            "not identified or unreliable.",
            HessianWarning,
            stacklevel=stacklevel,
        )
    warn_if_float32(jnp.result_type(res.loglik), stacklevel)


__all__ = ["fit"]
