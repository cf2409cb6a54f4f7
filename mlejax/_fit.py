"""``mj.fit``: validate on the host, run one compiled computation, report honestly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._constraints import parametrize
from ._diagnose import nonfinite_note, with_nonfinite_diagnosis
from ._hessfree import FREE_COV, free_cov, refuse_dense, stderr_for as cg_stderr_for, stderr_tree
from ._inference import (
    COV_TYPES,
    analyse_information,
    at_bound,
    checked_scores,
    checked_scores_jit,
    cluster_codes,
    covariance,
    diverging,
    information_by_chain_rule,
    natural_loglik,
    observed_information,
)
from ._jit import model_jit
from ._observations import PER_OBSERVATION_COV, observations, require_additive
from ._result import FitFields, FitResult
from ._smooth import flag_not_smooth
from ._starts import warn_starts
from ._status import (
    ConvergenceWarning,
    HessianWarning,
    Status,
    note_output_dtype,
    precision_of,
    warn_found,
)
from .solvers._base import Derivs, HostObjective, Objective, derivatives
from .solvers._driver import minimise
from .solvers._solvers import make_solver


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

    def owners(self):
        return (self.fn,)


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

    def owners(self):
        return (*self.loglik.owners(), *self.log_prior.owners())


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


def _is_number_list(x) -> bool:
    return isinstance(x, list) and bool(x) and all(
        isinstance(e, (int, float, np.number)) and not isinstance(e, bool) for e in x
    )


def _is_pandas(x) -> bool:
    return type(x).__module__.split(".")[0] == "pandas"


def _columns(leaf):
    """A pandas DataFrame as a dict of its named columns (a Series as its values), a
    list of numbers as one array; anything else unchanged."""
    if _is_pandas(leaf) and hasattr(leaf, "columns"):
        return {str(c): np.asarray(leaf[c]) for c in leaf.columns}
    if _is_pandas(leaf) and hasattr(leaf, "index"):
        return np.asarray(leaf)
    return np.asarray(leaf, dtype=float) if _is_number_list(leaf) else leaf


def prepare_data(data):
    """Turn data leaves into arrays; refuse what is not numeric, naming the leaf. A list
    of numbers is one array; a pandas DataFrame becomes a dict of its named columns."""
    data = jax.tree_util.tree_map(_columns, data, is_leaf=lambda x: _is_number_list(x) or _is_pandas(x))

    def conv(path, leaf):
        where = "data" + jax.tree_util.keystr(path)
        if isinstance(leaf, (str, bytes)):
            raise TypeError(f"{where} is a string; data leaves must be numbers or numeric arrays.")
        if jnp.iscomplexobj(leaf):
            raise TypeError(
                f"{where} is complex ({jnp.result_type(leaf)}); mlejax fits real log-likelihoods. "
                "Pass the real and imaginary parts as two leaves (or their modulus)."
            )
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


def _float_leaves(data):
    return [
        a for a in jax.tree_util.tree_leaves(data) if jnp.issubdtype(jnp.result_type(a), jnp.inexact)
    ]


class _OutputError(TypeError):
    """``loglik`` returned something other than a real scalar."""


def _check_output(out, loglik=None):
    if isinstance(out, (float, int, np.generic)):
        out = np.asarray(out)
    if not isinstance(out, (jax.ShapeDtypeStruct, jax.Array, np.ndarray)):
        raise _OutputError(
            "loglik must return one scalar (the total log-likelihood); it returned a "
            f"{type(out).__name__}: {out}."
        )
    if out.shape != ():
        raise _OutputError(
            "loglik must return a scalar (the total log-likelihood); it returned shape "
            f"{out.shape} with dtype {out.dtype}. Sum over observations, e.g. jnp.sum(logpdf)."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise _OutputError(
            f"loglik must return a real floating-point scalar; it returned dtype {out.dtype}."
        )
    note_output_dtype(loglik, out.dtype)


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


# What a fit computes, from either path: the array fields of :class:`FitResult` (the
# fields of :class:`FitFields` without a default), in its order: one field list for both.
FitCore = NamedTuple("FitCore", [(f.name, Any) for f in dataclasses.fields(FitFields)
                                 if f.default is dataclasses.MISSING])


class Hooks(NamedTuple):
    """The model-dependent parts of :func:`conclude`, one set per path."""

    refine: Any  # (info, exact) -> info: the natural Hessian where the chain rule is inexact
    scores: Any  # phi -> (n, k) per-observation scores
    log_prior: Any  # params -> the log-prior at the estimate (MAP fits), or None


def conclude(xp, spec, dyn, st, hess_u, hooks, cov_type, clusters, n_clusters, data_finite):
    """From the optimiser's end point to a :class:`FitCore`: natural-scale information by
    the chain rule, its analysis, covariance, standard errors, flags and status. Model-
    independent (the model enters only through ``hooks``); ``xp`` is numpy on the host,
    ``jax.numpy`` in the compiled fit."""
    params = spec.to_natural(st.x, dyn, xp)
    phi = spec.natural_flat(params, xp)
    d1, d2 = spec.transform_derivatives(st.x, dyn, xp)
    if spec.is_identity:
        info = hess_u
    else:
        info, exact = information_by_chain_rule(xp, hess_u, st.g, d1, d2)
        info = hooks.refine(info, exact)
    an = analyse_information(info, xp)
    scores = hooks.scores(phi) if cov_type != "observed" else None
    cov = covariance(cov_type, an, scores, clusters, n_clusters, xp)
    var = xp.diag(cov)
    se_flat = xp.where(var >= 0, xp.sqrt(xp.abs(var)), xp.nan)
    low, high = spec.bounds_flat(dyn, xp)
    params_at_bound = at_bound(phi, se_flat, low, high, xp)
    grad_nat = xp.where(d1 != 0, -st.g / xp.where(d1 != 0, d1, 1.0), 0.0)

    status = st.status
    ok = status == int(Status.SUCCESS)
    status = xp.where(ok & an.not_negdef, int(Status.NOT_MAXIMUM), status)
    status = xp.where(ok & an.not_identified, int(Status.NOT_IDENTIFIED), status)
    diverges = ok & ~an.not_negdef & ~an.not_identified & diverging(
        xp, phi, info, grad_nat, params_at_bound)
    status = xp.where(diverges, int(Status.DIVERGING), status)
    status = xp.where(data_finite, status, int(Status.NONFINITE_DATA)).astype(np.int32)
    # Only a fit that succeeded has trustworthy standard errors: any other status gives
    # NaN (the raw ones, from the information kept in the result: res.with_cov("observed")).
    trusted = status == int(Status.SUCCESS)
    cov = xp.where(trusted, cov, xp.nan)
    se_flat = xp.where(trusted, se_flat, xp.nan)
    nan_dyn = dyn._replace(values=tuple(xp.full_like(v, xp.nan) for v in dyn.values))
    stderr = spec.from_natural_flat(se_flat, nan_dyn)
    loglik = -st.f if hooks.log_prior is None else -st.f - hooks.log_prior(params)
    return FitCore(
        params=params, stderr=stderr, cov=cov, information=info, loglik=loglik,
        converged=status == int(Status.SUCCESS), n_iter=st.n_iter,
        grad_norm=xp.linalg.norm(st.g), status=status, hessian_not_negdef=an.not_negdef,
        not_identified=an.not_identified, ill_conditioned=an.ill_conditioned,
        condition_number=an.condition_number, null_vector=an.null_vector,
        params_at_bound=params_at_bound, x=st.x,
    )


def conclude_free(xp, spec, dyn, st, log_prior, data_finite):
    """:func:`conclude` without the information: ``cov=None`` and Hessian-free
    inference (``cov="hvp"``) form no k x k matrix, so there is no curvature check
    (the status is the optimiser's), no covariance and no standard errors."""
    params = spec.to_natural(st.x, dyn, xp)
    status = xp.where(data_finite, st.status, int(Status.NONFINITE_DATA)).astype(np.int32)
    loglik = -st.f if log_prior is None else -st.f - log_prior(params)
    no = xp.asarray(False)
    return FitCore(
        params=params, stderr=None, cov=None, information=None, loglik=loglik,
        converged=status == int(Status.SUCCESS), n_iter=st.n_iter, grad_norm=xp.linalg.norm(st.g),
        status=status, hessian_not_negdef=no, not_identified=no, ill_conditioned=no,
        condition_number=xp.asarray(np.nan, st.x.dtype), null_vector=None,
        params_at_bound=xp.zeros(st.x.shape, bool), x=st.x,
    )


def _negative_loglik(loglik, spec, dyn, data):
    """The one sign flip: ``u -> -loglik(natural(u), data)`` on the optimiser's scale."""
    return lambda x: -loglik(spec.to_natural(x, dyn), data)


# -- the compiled fit: the whole loop in one program (jit, vmap, batches) -------------------


def core(dyn, data, tol, maxiter, clusters, *, loglik, spec, solver, cov_type, nobs, n_clusters,
         check_finite, obs_mask=None, refine=True, exact_out=None) -> tuple[FitCore, tuple]:
    """The whole fit as one pure function (jit-compiled; vmap-able): the solver runs in
    one ``lax.while_loop``. Used under ``jax.jit``/``jax.vmap``, by ``fit_batch``, the
    profile likelihood and the bootstrap.

    ``refine=False`` leaves out the exact natural-scale Hessian that replaces the chain
    rule's information where the chain rule loses precision (a parameter numerically
    on a bound): the information is then the chain rule's everywhere, and whether that
    is exact is appended to the list ``exact_out`` (a batch reruns the inexact fits
    with ``refine=True``, so the common case compiles the model's Hessian once)."""
    x0 = spec.to_unconstrained(dyn)
    params0 = spec.to_natural(x0, dyn)
    try:
        out0 = jax.eval_shape(loglik, params0, data)
    except Exception as e:  # the user's own exception, unchanged, with context added
        e.add_note(_shapes_note(params0, data))
        raise
    _check_output(out0, loglik)
    obj = Objective(_negative_loglik(loglik, spec, dyn, data))
    st = minimise(solver, obj, x0, tol, maxiter)
    finite_leaves = tuple(jnp.all(jnp.isfinite(a)) for a in _float_leaves(data))
    data_finite = True
    if check_finite and finite_leaves:
        data_finite = jnp.all(jnp.stack(finite_leaves))
    log_prior = loglik.log_prior if isinstance(loglik, _Penalised) else None
    if cov_type not in COV_TYPES:  # None or "hvp": no k x k matrix
        return conclude_free(jnp, spec, dyn, st, log_prior, data_finite), finite_leaves
    hess = solver.hessian(st.solver_state)
    if hess is None:
        hess = derivatives(obj.value, st.x, 2).h
    phi_fn = natural_loglik(loglik, spec, dyn, data)

    def refined(info, exact):
        if not refine:
            exact_out.append(exact)
            return info
        return jnp.where(exact, info, observed_information(phi_fn, spec.natural_flat(spec.to_natural(st.x, dyn))))

    if not refine and spec.is_identity:  # no chain rule: always exact
        exact_out.append(jnp.asarray(True))
    hooks = Hooks(
        refine=refined,
        scores=lambda phi: checked_scores(loglik, spec, dyn, data, phi, obs_mask),
        log_prior=log_prior,
    )
    return conclude(jnp, spec, dyn, st, hess, hooks, cov_type, clusters, n_clusters,
                    data_finite), finite_leaves


_core_jit = model_jit(
    core, "loglik", static_argnames=("spec", "solver", "cov_type", "nobs", "n_clusters", "check_finite", "obs_mask"))


# -- the host-driven fit: compile the model, not the machinery ------------------------------


def _kernel(x, dyn, data, *, loglik, spec, order, gradient_only=None):
    """The model's derivative kernel: ``-loglik`` on the unconstrained scale at ``x``
    with its gradient (and Hessian, order 2), packed in one flat vector (one transfer
    to the host). Data and values are arguments: new data, starts or bounds of the
    same shapes reuse the compiled kernel."""

    def fn(u):
        out = loglik(spec.to_natural(u, dyn), data)
        _check_output(out, loglik)
        return -out

    d = derivatives(fn, x, order, gradient_only)
    return jnp.concatenate([jnp.ravel(a) for a in d if a is not None])


def _host_kernel(x, gradient_only, dyn, data, *, loglik, spec, order):
    """The host-driven fit's one compiled program: :func:`_kernel`, whose Hessian is
    skipped at run time when ``gradient_only`` (zeros): the checks after a fit (the
    smoothness check's finite differences of gradients) then cost a gradient per point,
    not a Hessian, without a second program to compile on a model's first fit."""
    return _kernel(x, dyn, data, loglik=loglik, spec=spec, order=order, gradient_only=gradient_only)


def _unpack(flat, k, order) -> Derivs:
    g = flat[1 : k + 1]
    return Derivs(flat[0], g, flat[k + 1 :].reshape(k, k) if order > 1 else None)


def _natural_hessian(phi, dyn, data, *, loglik, spec):
    return observed_information(natural_loglik(loglik, spec, dyn, data), phi)


_kernel_jit = model_jit(_host_kernel, "loglik", static_argnames=("spec", "order"))
_natural_hessian_jit = model_jit(_natural_hessian, "loglik", static_argnames=("spec",))
_log_prior_jit = model_jit(lambda params, *, log_prior: log_prior(params), "log_prior")


# Above this many data elements a derivative evaluation costs more than compiling the
# whole loop saves, and the compiled loop (one dispatch, loop-invariant data layout
# hoisted by XLA) is faster per iteration: such fits run compiled.
HOST_MAX_DATA_ELEMENTS = 2**19


def _host_ok(solver, dyn, data, tol) -> bool:
    """A single fit with concrete inputs, data of moderate size and a solver written
    against ``obj.xp``: drive it on the host."""
    leaves = jax.tree_util.tree_leaves((dyn, data, tol))
    size = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(data))
    return (bool(getattr(solver, "host", False)) and all(map(_is_concrete, leaves))
            and size <= HOST_MAX_DATA_ELEMENTS and not spans_devices(data))


def spans_devices(tree) -> bool:
    """Does any leaf live on more than one device (a sharded ``jax.Array``)? Such data
    are fitted by the compiled program only: the log-likelihood and its derivatives
    reduce across devices inside it, and nothing is copied to the host."""
    return any(isinstance(a, jax.Array) and _is_concrete(a) and len(a.sharding.device_set) > 1
               for a in jax.tree_util.tree_leaves(tree))


def host_fit(dyn, data, tol, maxiter, clusters, *, loglik, spec, solver, cov_type, nobs,
             n_clusters, check_finite, obs_mask=None) -> tuple[FitCore, tuple, Callable]:
    """:func:`core` with the driver loop and all the inference on the host (numpy): only
    the model's derivative kernel is compiled, once per model, shapes and order. Also
    returns ``gradients(points)``: the log-likelihood's gradients at the rows of
    ``points`` (optimiser scale) by the same compiled kernel, for checks that follow."""
    dtype = np.dtype(dyn.values[0].dtype)
    finite_leaves = tuple(bool(np.all(np.isfinite(np.asarray(a)))) for a in _float_leaves(data))
    dyn_np = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), dyn)
    dyn = jax.device_put(dyn)  # once, not on every kernel call (data: by the caller)
    k = spec.nparams

    first = {}  # the check at the start, reused by the solver's first evaluation

    def kernel(x, order):
        hit = first and first["order"] == order and np.array_equal(first["x"], x)
        derivs = first.get("derivs")
        first.clear()
        if hit:
            return derivs
        return _unpack(call(x, False, order), k, order)

    def call(x, gradient_only, order):
        return np.asarray(_kernel_jit(x, gradient_only, dyn, data, loglik=loglik, spec=spec, order=order), dtype)

    with np.errstate(all="ignore"):
        x0 = spec.to_unconstrained(dyn_np, np)
    try:  # compiles the kernel the solver uses; checks loglik's output
        first.update(x=x0, order=solver.order, derivs=kernel(x0, solver.order))
    except Exception as e:  # the user's own exception, unchanged, with context added
        if not isinstance(e, _OutputError):
            e.add_note(_shapes_note(spec.to_natural(x0, dyn_np, np), data))
        raise
    obj = HostObjective(kernel, dtype)
    st = minimise(solver, obj, x0, np.asarray(tol, dtype), int(maxiter))
    log_prior = (lambda params: np.asarray(_log_prior_jit(params, log_prior=loglik.log_prior), dtype)) \
        if isinstance(loglik, _Penalised) else None
    data_finite = not check_finite or all(finite_leaves)
    if cov_type not in COV_TYPES:  # None or "hvp": no k x k matrix
        with np.errstate(all="ignore"):
            return conclude_free(np, spec, dyn_np, st, log_prior, data_finite), finite_leaves, None
    hess = solver.hessian(st.solver_state)
    if hess is None:
        hess = obj.value_grad_hess(st.x)[2]

    def refine(info, exact):
        if exact:
            return info
        phi = spec.natural_flat(spec.to_natural(st.x, dyn_np, np), np)
        return np.asarray(_natural_hessian_jit(phi, dyn, data, loglik=loglik, spec=spec), dtype)

    hooks = Hooks(
        refine=refine,
        scores=lambda phi: np.asarray(
            checked_scores_jit(dyn=dyn, data=data, phi=phi, loglik=loglik, spec=spec, mask=obs_mask), dtype),
        log_prior=log_prior,
    )
    with np.errstate(all="ignore"):
        out = conclude(np, spec, dyn_np, st, hess, hooks, cov_type,
                       None if clusters is None else np.asarray(clusters), n_clusters, data_finite)
    order = max(solver.order, 1)

    def gradients(points):  # by the same program, its Hessian skipped
        return -np.stack([call(np.asarray(u, dtype), True, order)[1 : k + 1] for u in points])

    return out, finite_leaves, gradients


def _resolve_options(method, maxiter, tol):
    solver = make_solver(method)
    maxiter = solver.default_maxiter if maxiter is None else maxiter
    tol = solver.default_tol if tol is None else tol
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 0:
        raise ValueError(f"maxiter={maxiter!r} must be a non-negative integer.")
    if _is_concrete(tol) and not (np.isfinite(float(tol)) and float(tol) >= 0):
        raise ValueError(f"tol={tol!r} must be a finite number >= 0.")
    return solver, int(maxiter), tol


def check_options(loglik, log_prior, method, maxiter, tol, cov, free_ok=False):
    """The options ``fit`` and ``fit_batch`` share, validated:
    ``(objective, solver, maxiter, tol)``. ``free_ok``: ``cov`` may also be None or
    ``"hvp"`` (no dense information)."""
    ll = objective_loglik(loglik, log_prior)
    if log_prior is not None and cov not in ("observed",) + FREE_COV:
        raise ValueError("with log_prior, only cov='observed' (the Laplace approximation) applies.")
    solver, maxiter, tol = _resolve_options(method, maxiter, tol)
    known = COV_TYPES + (FREE_COV if free_ok else ())
    if cov not in known:
        raise ValueError(f"cov={cov!r} is not known; use one of {known}.")
    return ll, solver, maxiter, tol


def core_static(ll, spec, solver, cov, nobs, n_clusters, check_finite, obs=None) -> dict:
    """The static (jit cache key) arguments of :func:`core`."""
    return dict(loglik=ll, spec=spec, solver=solver, cov_type=cov, nobs=nobs,
                n_clusters=n_clusters, check_finite=bool(check_finite),
                obs_mask=None if obs is None else obs.mask)


def check_nobs(nobs) -> int:
    """``nobs`` as given by the user: a positive integer."""
    if isinstance(nobs, bool) or not isinstance(nobs, (int, np.integer)) or nobs < 1:
        raise ValueError(f"nobs={nobs!r} must be a positive integer (the number of observations).")
    return int(nobs)


def result_meta(spec, nobs, solver, cov, ll, obs=None) -> dict:
    """The static fields of a fit result (``FitResult``, ``BatchFitResult``)."""
    return dict(names=spec.names, nobs=nobs, method=solver.name,
                cov_type=cov, _spec=spec, _loglik=ll, _obs=obs)




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
    obs=None,
    starts=None,
    batch_size=None,
    progress=None,
    key=None,
    stderr_for=None,
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
        method: ``"newton"`` (exact Hessian, damped; default), ``"trust-region"``
            (exact trust-region subproblem, for hard starts), ``"lbfgs"``, any
            ``optax.GradientTransformation`` for gradient ascent, or any instance of
            :class:`mlejax.solvers.Solver` (write your own). A single fit with concrete
            inputs (up to 2^19 data elements) and a host-capable solver (Newton)
            compiles only the model's derivative kernel and runs the solver's logic
            on the host, with the same answers; under
            ``jax.jit``/``jax.vmap`` the whole fit is one compiled program.
        maxiter: iteration limit (default: the solver's ``default_maxiter``; 200
            Newton, 3000 trust-region, 2000 L-BFGS, 10000 optax).
        tol: convergence when the Newton decrement ``g' H^-1 g`` (twice the
            log-likelihood still to gain; exact for Newton, a secant estimate for
            the first-order methods) is at most ``tol``. In log-likelihood units, so
            it does not change when a constant is added to the log-likelihood or a
            parameter is rescaled (default: the solver's ``default_tol``; 1e-10
            Newton, which then takes one last exact step, 1e-14 L-BFGS, 1e-12 optax).
        cov: ``"observed"`` (inverse observed information), ``"opg"`` (outer product
            of per-observation scores), ``"sandwich"`` (Huber-White) or ``"cluster"``
            (cluster-robust; give ``clusters``). The per-observation covariances need
            the total log-likelihood to be the sum over observations. ``None``: no
            inference (no Hessian formed after the fit, no curvature check; ``stderr``,
            ``cov`` and ``information`` are None). ``"hvp"``: Hessian-free inference, no
            k x k matrix ever formed; standard errors of the parameters named in
            ``stderr_for`` (others NaN) and ``res.delta(fn)`` by conjugate gradients on
            Hessian-vector products (exact at convergence, not an approximation). A
            first-order fit with more than ``DENSE_MAX_PARAMS`` (4096) free parameters
            turns ``"observed"`` into ``"hvp"``; a dense matrix that would not fit in
            memory is refused before any work.
        stderr_for: names (``"w[3]"``, or a leaf ``"w"`` for all its elements) or indices
            of free parameters whose standard errors to compute Hessian-free (implies
            ``cov="hvp"``; see ``FitResult.stderr_for``).
        clusters: one label per observation, for ``cov="cluster"``.
        nobs: number of observations (used by BIC and AICc), if the leading axis of the
            observation leaves is not it.
        obs: the data leaves that hold one row per observation, by name (``"x"``,
            ``["y", "X"]``, ``"data['x']"``; ``[]`` for none). Default: guessed, the
            leaves sharing the most common leading-axis length. Whatever treats the
            data as observations (OPG / sandwich / cluster covariance, bootstrap
            resampling, a guessed ``nobs`` in BIC) first checks, at the estimate, that
            the log-likelihood equals the sum of its terms on those leaves sliced to one
            row each, and refuses otherwise.
        check_finite: refuse data containing NaN/inf (set False if ``loglik``
            masks them itself).
        log_prior: ``log_prior(params) -> scalar`` added to the log-likelihood: the fit
            is then the MAP estimate (a penalised likelihood: a Gaussian prior is a
            ridge penalty, a Laplace prior a lasso one), and ``information``/``cov``
            come from the Hessian of the log-posterior (the Laplace approximation).
            ``loglik`` reports the log-likelihood alone at the estimate.
        starts: fit from many starting points and keep the best converged maximum
            (see "Local optima" in the README). A number ``S``: ``init`` itself and
            ``S - 1`` starts drawn around it on the optimiser's unconstrained scale
            (a log for ``mj.Positive``, a logit for ``mj.Bounded``), each coordinate
            ``u0 + z * max(1, |u0|)`` with ``z ~ N(0, 1)``; needs ``key``. A function
            ``key -> init`` (plain values shaped like ``init``; the constraints are
            ``init``'s), run on each key of the stack ``key``. Or a pytree like
            ``init`` whose leaves are stacked along a leading axis, one row per start.
            All starts run vmapped in one compiled call (a second call with the same
            shapes does not recompile); the result is the fit from the best converged
            start, with full inference there, and ``res.starts`` (a
            :class:`mlejax.StartsSummary`) reports how many converged, the distinct
            maxima, their log-likelihoods and how many starts reached each. A
            :class:`mlejax.LocalOptimaWarning` says when the best maximum was reached
            by a single start, or when distinct maxima tie in log-likelihood.
        key: a ``jax.random`` key for ``starts=S`` (e.g. ``jax.random.key(0)``), or a
            stack of keys (``jax.random.split(key, S)``) for ``starts=function``; with
            ``batch_size=``, the key of the minibatch shuffling (default ``key(0)``).
        batch_size: with an optax ``method``, a stochastic fit: ``maxiter`` epochs over
            shuffled minibatches of this many rows (data in memory or streamed), then
            one exact pass over all the data for the reported ``loglik`` and
            ``grad_norm``; ``res.stochastic`` is True. See the streaming guide.
        progress: streamed and minibatch fits: ``True`` shows one update per pass or
            epoch (or give an ``mj.progress.Recorder()``).

    ``data`` may also be a streamed source (``mj.stream.from_npy``, ``from_parquet``,
    ``from_iterator``, ``from_arrays``): each Newton iteration is then one exact pass
    over its chunks, and the result equals the in-memory fit.

    Raises:
        TypeError/ValueError at call time for bad input, naming the argument; a
        ``ValueError`` if the log-likelihood is not finite at the start. Problems
        during the fit are reported in ``status``/``message`` and warned about.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
        >>> x = np.array([-0.3, 0.1, 0.2, 0.4, 9.8, 10.1, 10.3])    # a cluster and outliers
        >>> def loglik(p, x):                                       # Cauchy location, scale 0.5
        ...     return jnp.sum(jax.scipy.stats.cauchy.logpdf(x, p, 0.5))
        >>> round(float(mj.fit(loglik, 10.0, x).params), 2)         # from 10: the outliers' maximum
        10.02
        >>> res = mj.fit(loglik, 10.0, x, starts=16, key=jax.random.key(0))
        >>> round(float(res.params), 2), res.starts.n_maxima        # the global maximum, and 2 found
        (0.16, 2)
    """
    if batch_size is not None or getattr(data, "streamed", False):
        if starts is not None:
            raise ValueError("starts= is not available for streamed or minibatch fits.")
        return _OUT_OF_CORE[0](loglik, init, data, method=method, maxiter=maxiter, tol=tol, cov=cov,
                               check_finite=check_finite, log_prior=log_prior, batch_size=batch_size,
                               progress=progress, key=key, nobs=nobs, obs=obs, clusters=clusters)
    if progress is not None:
        raise ValueError("progress= is for streamed data and minibatch fits (batch_size=).")
    if stderr_for is not None and cov not in ("observed", "hvp"):
        raise ValueError(f"stderr_for= computes Hessian-free standard errors (cov='hvp'); it does not go with cov={cov!r}.")
    cov = "hvp" if stderr_for is not None else cov
    ll, solver, maxiter, tol = check_options(loglik, log_prior, method, maxiter, tol, cov, free_ok=True)
    spec, dyn = parametrize(init)
    second_order = solver.order >= 2
    cov = free_cov(cov, spec.nparams, second_order)
    refuse_dense(spec.nparams, np.dtype(dyn.values[0].dtype).itemsize if dyn.values else 8, solver.name, cov,
                 second_order)
    data = prepare_data(data)
    if nobs is not None:
        nobs = check_nobs(nobs)
    n, obs_info = observations(data, nobs, obs)
    codes, n_clusters = cluster_codes(clusters, n, cov)
    static = core_static(ll, spec, solver, cov, n, n_clusters, check_finite, obs_info)
    summary = finite_leaves = gradients = None
    if starts is not None:
        out, dyn, summary = _MULTI_START[0](starts, key, spec, dyn, data, tol, maxiter, codes, static)
    elif key is not None:
        raise ValueError("key= is only used with starts= (random starting points) or batch_size= (minibatch "
                         "shuffling); drop it, or add starts=.")
    elif _host_ok(solver, dyn, data, tol):
        data = jax.device_put(data)  # once, not on every kernel call
        out, finite_leaves, gradients = host_fit(dyn, data, tol, maxiter, codes, **static)
    else:
        dtype = dyn.values[0].dtype
        out, finite_leaves = _core_jit(dyn, data, jnp.asarray(tol, dtype),
                                       jnp.asarray(maxiter, jnp.int32), codes, **static)
    res = FitResult(**out._asdict(), _dyn=dyn, _data=data, starts=summary,
                    **result_meta(spec, n, solver, cov, ll, obs_info))
    if _is_concrete(res.status):
        if cov in PER_OBSERVATION_COV:
            require_additive(res, f"cov={cov!r}")
        if int(res.status) not in (Status.NONFINITE_DATA, Status.NONFINITE_START):
            res = flag_not_smooth(res, gradients)
        if int(res.status) == Status.NONFINITE:
            res = with_nonfinite_diagnosis(res)
        _raise_or_warn(res, data, finite_leaves)
        warn_starts(summary)
        if stderr_for is not None:
            res = with_stderr_for(res, stderr_for)
    return res


def with_stderr_for(res: FitResult, which) -> FitResult:
    """``res`` with Hessian-free standard errors of the parameters ``which`` (NaN for
    the others) in ``stderr``."""
    got = cg_stderr_for(res, which)
    se = np.full(res.nparams, np.nan, np.dtype(jnp.result_type(res.loglik)))
    if int(res.status) == Status.SUCCESS:  # as for dense ones: only a successful fit's
        se[[res.names.index(n) for n in got]] = list(got.values())
    return dataclasses.replace(res, stderr=stderr_tree(res, se))


# ``starts=`` runs fit_batch's compiled engine (mlejax.backends), which is built on this
# module; imports point one way, so the runner registers itself here when
# mlejax.backends is imported (always: mlejax/__init__ imports it).
_MULTI_START: list = []


# Streamed sources (``mlejax.stream``) and minibatch fits (``batch_size=``) are run by
# mlejax.backends too, registered the same way.
_OUT_OF_CORE: list = []


def register_out_of_core(runner) -> None:
    """Set the runner of streamed and minibatch fits: ``runner(loglik, init, data, **options)
    -> FitResult``."""
    _OUT_OF_CORE[:] = [runner]


def register_multi_start(runner) -> None:
    """Set the multi-start runner: ``runner(starts, key, spec, dyn, data, tol, maxiter,
    codes, static) -> (FitCore, dyn, StartsSummary)``."""
    _MULTI_START[:] = [runner]


def _raise_or_warn(res: FitResult, data, finite_leaves, stacklevel=3):
    status = int(res.status)
    if status == Status.NONFINITE_DATA:
        bad = []
        for path, a in jax.tree_util.tree_leaves_with_path(data):
            if jnp.issubdtype(jnp.result_type(a), jnp.inexact):
                nbad = int(jnp.sum(~jnp.isfinite(a)))  # on the device(s) holding a
                if nbad:
                    bad.append(f"data{jax.tree_util.keystr(path)} ({nbad} NaN/inf values)")
        raise ValueError(
            f"{', '.join(bad)}: the data contain NaN or inf. Remove or impute those "
            "observations, or handle them inside loglik and pass check_finite=False."
        )
    if status == Status.NONFINITE_START:
        note = nonfinite_note(res, res._spec.to_natural(res._spec.to_unconstrained(res._dyn), res._dyn))
        if note is not None:
            raise ValueError(f"at the starting values, {note}.")
        raise ValueError(
            f"the log-likelihood (or its gradient) is not finite at the starting values "
            f"(loglik = {float(res.loglik)}). Choose init inside the support of the model "
            "(e.g. positive scales, probabilities in (0, 1)) or check loglik for log(0)."
        )
    found = []  # (category, text) of each problem, most important first
    if status in (Status.NOT_MAXIMUM, Status.NOT_IDENTIFIED, Status.NOT_SMOOTH):
        found.append((HessianWarning, res.message))
    elif status != Status.SUCCESS:
        found.append((ConvergenceWarning, f"{res.message} (after {int(res.n_iter)} iterations, "
                                          f"gradient norm {float(res.grad_norm):.3g})"))
    elif (bool(res.ill_conditioned) or bool(np.any(np.asarray(res.params_at_bound)))
          or bool(res.hessian_not_negdef)):
        found.append((HessianWarning, res.message))
    if res.nobs is not None and res.nobs <= res.nparams:
        found.append((HessianWarning, f"only {res.nobs} observations for {res.nparams} parameters: "
                                      "the covariance is not identified or unreliable"))
    warn_found(found, precision_of(res._loglik, jnp.result_type(res.loglik)))


__all__ = ["fit"]
