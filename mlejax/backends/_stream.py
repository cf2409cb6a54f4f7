"""Exact Newton on streamed data: each iteration is one pass over the chunks.

The log-likelihood, its gradient and Hessian (and, for ``cov="opg"``/``"sandwich"``,
the sum of the per-observation score outer products) are sums over observations, so
they are sums over chunks: one compiled per-chunk function of a fixed chunk shape
(the last chunk padded, its padding given weight 0) is called on every chunk while
the next one is read by a background thread, and the sums are accumulated on the
device. The Newton solver, the inference and the flags are the same host-driven code
as an in-memory fit (:func:`mlejax._fit.conclude`): only the data access differs, so
the result equals the in-memory fit to rounding.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import parametrize
from .._fit import FitCore, Hooks, _raise_or_warn, check_options, conclude
from .._observations import Observations, additivity, is_additive, leaf_names, natural_loglik_of
from .._progress import reporter, reporting
from .._result import FitResult
from ..solvers._base import Derivs, HostObjective, derivatives
from ..solvers._driver import minimise
from ._sources import prefetched


def _rows_of(chunk):
    return jax.tree_util.tree_leaves(chunk)


def _one(chunk, rows):
    """The chunk's pytree with each leaf replaced by one row (leading axis kept)."""
    treedef = jax.tree_util.tree_structure(chunk)
    return jax.tree_util.tree_unflatten(treedef, [r[None] for r in rows])


def _to_params(spec, dyn, natural):
    return (lambda v: spec.from_natural_flat(v, dyn)) if natural else (lambda v: spec.to_natural(v, dyn))


@functools.partial(jax.jit, static_argnames=("loglik", "spec", "order", "scores", "natural"))
def chunk_terms(v, dyn, chunk, n_valid, *, loglik, spec, order, scores, natural=False):
    """One chunk's share of a pass, packed flat: ``-loglik`` summed over its real rows
    (``loglik`` on the whole chunk, less the padding rows, which copy the first row),
    its gradient and (order 2) Hessian in ``v`` (the optimiser's scale, or the natural
    flat parameters with ``natural``), the sum of the score outer products (``scores``),
    then per data leaf its count of non-finite values."""
    to_params = _to_params(spec, dyn, natural)
    m = _rows_of(chunk)[0].shape[0]

    def neg(u):  # the padding rows are copies of the first row: their terms are taken off again
        params = to_params(u)
        first = jax.tree_util.tree_map(lambda a: a[:1], chunk)
        return -(loglik(params, chunk) - (m - n_valid).astype(v.dtype) * loglik(params, first))

    d = derivatives(neg, v, order)
    parts = [d.f[None], d.g] + ([jnp.ravel(d.h)] if order > 1 else [])
    if scores:
        s = jax.vmap(lambda rows: jax.grad(lambda u: loglik(to_params(u), _one(chunk, rows)))(v))(_rows_of(chunk))
        w = (jnp.arange(m) < n_valid).astype(v.dtype)
        parts.append(jnp.ravel((s * w[:, None]).T @ s))
    return jnp.concatenate(parts)


class Pass(NamedTuple):
    """The sums of one pass over the data."""

    derivs: Derivs
    outer: Any  # sum of score outer products (k x k), or None
    nobs: int
    nonfinite: Any  # per data leaf, the count of NaN/inf values (a checking pass; else empty)


def full_pass(source, v, dyn, *, loglik, spec, order, scores=False, natural=False, check=False) -> Pass:
    """Sum one chunk function over all chunks (prefetched), on the device, synced once."""
    k = v.shape[0]
    acc, nobs, bad = None, 0, []
    chunks = _counting_nonfinite(source.chunks(), bad) if check else source.chunks()
    for chunk, n in prefetched(chunks):
        out = chunk_terms(v, dyn, chunk, n, loglik=loglik, spec=spec, order=order, scores=scores,
                          natural=natural)
        acc = out if acc is None else acc + out
        nobs += n
    flat = np.asarray(acc, dtype=v.dtype)
    pos = 1 + k + (k * k if order > 1 else 0)
    d = Derivs(flat[0], flat[1:k + 1], flat[k + 1:pos].reshape(k, k) if order > 1 else None)
    outer = flat[pos:pos + k * k].reshape(k, k) if scores else None
    return Pass(d, outer, nobs, np.sum(bad, axis=0) if bad else np.zeros(0))


def _counting_nonfinite(chunks, counts):
    """``chunks`` unchanged, appending each one's count of NaN/inf per data leaf to
    ``counts`` (on the host, in the prefetch thread: no second compiled function)."""
    for chunk, n in chunks:
        counts.append([int(np.sum(~np.isfinite(a[:n]))) if np.issubdtype(a.dtype, np.inexact) else 0
                       for a in _rows_of(chunk)])
        yield chunk, n


@functools.partial(jax.jit, static_argnames=("loglik", "spec"))
def _additive(phi, dyn, chunk, *, loglik, spec):
    return is_additive(additivity(natural_loglik_of(loglik, spec, dyn), phi, chunk,
                                  (True,) * len(_rows_of(chunk)))[0])


def check_first_chunk(source, loglik, spec, dyn, x0):
    """Refuse a log-likelihood that is not a sum over the rows of a chunk (its total
    would not be the sum over chunks), checked on the first chunk at the start."""
    chunk, n = next(iter(source.chunks()))
    chunk = jax.tree_util.tree_map(lambda a: a[:n], chunk)
    phi = spec.natural_flat(spec.to_natural(x0, dyn))
    if not bool(_additive(phi, dyn, chunk, loglik=getattr(loglik, "loglik", loglik), spec=spec)):
        raise ValueError(
            "streamed data are summed chunk by chunk, but loglik(params, chunk) is not the sum of its "
            "one-row terms (checked on the first chunk at the starting values): every data leaf of a "
            "streamed source must be one row per observation and loglik a sum over rows. Put "
            "constants in a closure of loglik; fit data that do not split into rows in memory."
        )
    return chunk


def _refuse_nonfinite(source_chunk, counts):
    if np.any(counts > 0):
        names = leaf_names(source_chunk)
        bad = [f"{nm} ({int(c)} NaN/inf values)" for nm, c in zip(names, counts) if c > 0]
        raise ValueError(
            f"{', '.join(bad)}: the streamed data contain NaN or inf. Remove or impute those rows "
            "(or mask them inside loglik and pass check_finite=False)."
        )


def _log_prior_value(ll, params):
    lp = getattr(ll, "log_prior", None)
    return None if lp is None else np.asarray(lp(params))


def fit_stream(loglik, init, source, *, method="newton", maxiter=None, tol=None, cov="observed",
               check_finite=True, log_prior=None, progress=None) -> FitResult:
    """:func:`mlejax.fit` on a streamed source (exact Newton, one pass per iteration)."""
    ll, solver, maxiter, tol = check_options(loglik, log_prior, method, maxiter, tol, cov)
    if not getattr(solver, "host", False) or solver.order != 2:
        raise ValueError(
            f"method={method!r}: streamed data are fitted by exact Newton passes (method='newton'), or "
            "by minibatches with an optax method and batch_size=."
        )
    if cov == "cluster":
        raise ValueError("cov='cluster' is not available for streamed data; use 'observed', 'opg' or 'sandwich'.")
    spec, dyn = parametrize(init)
    dtype = np.dtype(dyn.values[0].dtype)
    dyn_np = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), dyn)
    dyn = jax.device_put(dyn)
    with np.errstate(all="ignore"):
        x0 = spec.to_unconstrained(dyn_np, np)
    first = check_first_chunk(source, ll, spec, dyn, x0)
    want_scores = cov in ("opg", "sandwich")
    last = {}
    kw = dict(loglik=ll, spec=spec)
    rep = reporter(progress)

    def kernel(x, order):
        p = full_pass(source, jnp.asarray(x, dtype), dyn, order=order, scores=want_scores and order > 1,
                      check=check_finite and not last, **kw)
        if check_finite and not last:
            _refuse_nonfinite(first, p.nonfinite)
        last.update(x=np.array(x), p=p, passes=last.get("passes", 0) + 1)
        if rep is not None:
            rep.update(last["passes"], -float(p.derivs.f))
        return p.derivs

    with reporting(rep, None, "passes over the data"):
        st = minimise(solver, HostObjective(kernel, dtype), x0, np.asarray(tol, dtype), int(maxiter))
        hess = solver.hessian(st.solver_state)
        core = _conclude(source, st, hess, last, spec, dyn, dyn_np, ll, cov, kw, dtype)
    res = FitResult(**core._asdict(), _dyn=dyn_np, _data=source, names=spec.names, nobs=last["p"].nobs,
                    method=solver.name, cov_type=cov, _spec=spec, _loglik=ll,
                    _obs=Observations((True,) * len(_rows_of(first)), nobs_given=True, chosen=True))
    _raise_or_warn(res, None, ())
    return res


def _conclude(source, st, hess, last, spec, dyn, dyn_np, ll, cov, kw, dtype) -> FitCore:
    """:func:`conclude` with the model-dependent hooks served by passes over the data."""

    def at_estimate(order, scores):
        if np.array_equal(last["x"], st.x) and (last["p"].outer is not None or not scores):
            return last["p"]
        return full_pass(source, jnp.asarray(st.x, dtype), dyn, order=order, scores=scores, **kw)

    def refine(info, exact):
        if exact:
            return info
        phi = spec.natural_flat(spec.to_natural(st.x, dyn_np, np), np)
        p = full_pass(source, jnp.asarray(phi, dtype), dyn, order=2, natural=True, **kw)
        return p.derivs.h  # the Hessian of -loglik: the observed information

    def scores(phi):
        # the per-observation covariances use only S'S: a k x k factor R with R'R = S'S
        d1, _ = spec.transform_derivatives(st.x, dyn_np, np)
        outer = at_estimate(2, True).outer / np.outer(d1, d1)
        w, v = np.linalg.eigh(0.5 * (outer + outer.T))
        return np.sqrt(np.clip(w, 0, None))[:, None] * v.T

    hooks = Hooks(refine=refine, scores=scores,
                  log_prior=(lambda params: _log_prior_value(ll, params)) if hasattr(ll, "log_prior") else None)
    with np.errstate(all="ignore"):
        return conclude(np, spec, dyn_np, st, hess, hooks, cov, None, None, True)


__all__ = ["fit_stream", "full_pass", "chunk_terms"]
