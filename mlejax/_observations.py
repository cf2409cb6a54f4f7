"""Which data leaves are the observations, and the check that the log-likelihood
really is a sum over them.

Everything that treats the data as ``n`` independent observations (OPG, sandwich and
cluster covariances, the per-observation scores, bootstrap resampling, ``nobs`` in
BIC) slices the observation leaves to one row at a time. That is only meaningful if
the total log-likelihood equals the sum of the log-likelihoods of those one-row
datasets. :func:`require_additive` checks that once, at the estimate (value and
gradient), and refuses with an error naming the leaves otherwise: a time series
written over the whole series, a transposed design matrix or a guessed observation
axis would otherwise give plausible but wrong standard errors.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._jit import model_jit

PER_OBSERVATION_COV = ("opg", "sandwich", "cluster")


class Observations(NamedTuple):
    """Static description of the observations of a fit (hashable: a jit key part).

    ``mask``: per data leaf (in ``tree_flatten`` order), whether it is sliced per
    observation. ``nobs_given``: the user passed ``nobs=`` (then BIC uses it
    unchecked). ``chosen``: the user named the leaves with ``obs=`` (else guessed).
    """

    mask: tuple
    nobs_given: bool = False
    chosen: bool = False


def leaf_names(data) -> list[str]:
    """``data['x']``-style names of the data leaves, in ``tree_flatten`` order."""
    return ["data" + jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(data)]


def _key_str(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _named(path, name: str) -> bool:
    """Does ``name`` (``"x"``, ``"['x']"``, ``"data['x']"``, ``"[0]"``) name this leaf
    or a subtree holding it?"""
    name = name[4:] if name.startswith("data") else name
    if name == "":
        return True
    if not name.startswith("["):
        return bool(path) and _key_str(path[0]) == name
    return any(jax.tree_util.keystr(path[:j]) == name for j in range(1, len(path) + 1))


def _leading(a):
    return jnp.shape(a)[0] if jnp.ndim(a) >= 1 else None


def _chosen_mask(data, obs) -> tuple:
    names = [obs] if isinstance(obs, (str, int)) else list(obs)
    names = [f"[{n}]" if isinstance(n, int) else n for n in names]
    paths = [p for p, _ in jax.tree_util.tree_leaves_with_path(data)]
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"obs= takes names of data leaves (strings); got {n!r}.")
        if not any(_named(p, n) for p in paths):
            raise ValueError(
                f"obs={obs!r}: {n!r} names no data leaf; the leaves are "
                f"{', '.join(leaf_names(data)) or '(none)'}."
            )
    return tuple(any(_named(p, n) for n in names) for p in paths)


def observations(data, nobs=None, obs=None) -> tuple[Any, Observations]:
    """``(nobs, Observations)`` for a fit's data.

    ``obs=None`` guesses: the leaves whose leading axis has the most common length
    (ties: the largest) are the observations. ``obs`` names them instead (a leaf
    name or a list of names, e.g. ``"x"`` or ``["y", "X"]``; ``[]`` for none); they
    must share their leading axis. ``nobs`` overrides the count used by BIC.
    """
    leaves = jax.tree_util.tree_leaves(data)
    if obs is None:
        sizes = [_leading(a) for a in leaves if _leading(a) is not None]
        guess = max(set(sizes), key=lambda n: (sizes.count(n), n)) if sizes else None
        mask = tuple(_leading(a) is not None and _leading(a) == guess for a in leaves)
        n = guess
    else:
        mask = _chosen_mask(data, obs)
        lengths = {_leading(a) for a, m in zip(leaves, mask) if m}
        if None in lengths or len(lengths) > 1:
            shapes = ", ".join(
                f"{nm} {jnp.shape(a)}" for nm, a, m in zip(leaf_names(data), leaves, mask) if m
            )
            raise ValueError(
                f"obs={obs!r}: the observation leaves must share a leading axis (one row per "
                f"observation); they have shapes {shapes}."
            )
        n = lengths.pop() if lengths else None
    if nobs is not None:
        if isinstance(nobs, bool) or int(nobs) != nobs or int(nobs) < 0:
            raise ValueError(f"nobs={nobs!r} must be a non-negative integer.")
        n = int(nobs)
    return n, Observations(mask, nobs is not None, obs is not None)


def one_observation(data, mask, rows):
    """The data with each observation leaf replaced by ``rows`` (one row each, with
    the leading axis kept); ``rows`` lists the sliced leaves in order."""
    leaves, treedef = jax.tree_util.tree_flatten(data)
    it = iter(rows)
    full = [next(it)[None] if m else a for a, m in zip(leaves, mask)]
    return jax.tree_util.tree_unflatten(treedef, full)


def observation_rows(data, mask):
    return [a for a, m in zip(jax.tree_util.tree_leaves(data), mask) if m]


def observation_terms(ll_nat, phi, data, mask):
    """Per-observation log-likelihoods ``(n,)`` and scores ``(n, k)`` of
    ``ll_nat(phi, data)`` (the data sliced to one observation at a time)."""

    def one(rows):
        return jax.value_and_grad(ll_nat)(phi, one_observation(data, mask, rows))

    return jax.vmap(one)(observation_rows(data, mask))


class Additivity(NamedTuple):
    """The totals a check compares: ``loglik`` and its gradient against the sums of
    the per-observation terms, with the sums of their absolute values for scale."""

    total: Any
    summed: Any
    scale: Any
    grad: Any
    grad_summed: Any
    grad_scale: Any


def additivity(ll_nat, phi, data, mask) -> tuple[Additivity, Any]:
    """``(Additivity, scores)``: the check's totals and the per-observation scores."""
    values, scores = observation_terms(ll_nat, phi, data, mask)
    total, grad = jax.value_and_grad(ll_nat)(phi, data)
    a = Additivity(
        total, jnp.sum(values), jnp.sum(jnp.abs(values)),
        grad, jnp.sum(scores, axis=0), jnp.sum(jnp.abs(scores), axis=0),
    )
    return a, scores


def is_additive(a: Additivity, xp=jnp):
    """True where the log-likelihood and its gradient equal the sums of the
    per-observation terms, to a relative ``30 sqrt(eps)`` (the gradient also to an
    absolute ``1e3 eps`` times the log-likelihood's size); True where they are not
    finite (a failed fit, already flagged)."""
    dtype = jnp.result_type(a.total)
    rtol = 30.0 * np.sqrt(np.finfo(dtype).eps)
    tiny = np.finfo(dtype).tiny
    ok_v = xp.abs(a.total - a.summed) <= rtol * (a.scale + xp.abs(a.total)) + tiny
    # a gradient that is rounding noise (a parameter the terms barely depend on) has
    # no relative accuracy: allow rounding of the log-likelihood's own size
    floor = 1e3 * np.finfo(dtype).eps * (a.scale + xp.abs(a.total))
    ok_g = xp.abs(a.grad - a.grad_summed) <= rtol * (a.grad_scale + xp.abs(a.grad)) + floor[..., None] + tiny
    ok = ok_v & xp.all(ok_g, axis=-1)
    finite = xp.isfinite(a.total) & xp.all(xp.isfinite(a.grad), axis=-1)
    return ok | ~finite


def natural_loglik_of(loglik, spec, dyn):
    """``(phi, data) -> loglik``: the log-likelihood of the flat natural free parameters."""
    return lambda phi, data: loglik(spec.from_natural_flat(phi, dyn), data)


def _data_loglik(ll):
    """The log-likelihood alone (a MAP objective's prior is not per observation)."""
    return getattr(ll, "loglik", ll)


@functools.partial(model_jit, model="ll", static_argnames=("spec", "mask", "batched"))
def _check(dyn, data, phi, *, ll, spec, mask, batched):
    def one(dyn, data, phi):
        return additivity(natural_loglik_of(_data_loglik(ll), spec, dyn), phi, data, mask)[0]

    return jax.vmap(one)(dyn, data, phi) if batched else one(dyn, data, phi)


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_result(res, batched: bool = False) -> Additivity | None:
    """The additivity check of a fit (or a stacked batch of fits) at its estimate;
    ``None`` where it cannot run (traced, no observation leaves, or an old result)."""
    obs = getattr(res, "_obs", None)
    if obs is None or not any(obs.mask) or res._spec is None or _is_traced(res.loglik):
        return None
    spec = res._spec
    phi = jax.vmap(spec.natural_flat)(res.params) if batched else \
        spec.natural_flat(jax.tree_util.tree_map(np.asarray, res.params), np)  # host: compiles nothing
    return _check(res._dyn, res._data, phi, ll=res._loglik, spec=spec, mask=obs.mask,
                  batched=batched)


def _host_check(res, batched: bool) -> Additivity | None:
    """:func:`check_result` with its totals as numpy arrays, for the host's verdict
    (``is_additive(a, np)`` compiles nothing)."""
    a = check_result(res, batched)
    return None if a is None else jax.tree_util.tree_map(np.asarray, a)


def refusal(res, what: str, a: Additivity, data_for_names=None) -> str:
    """The error message: which leaves were taken as observations, what differs, the fix."""
    obs = res._obs
    data = res._data if data_for_names is None else data_for_names
    names = [n for n, m in zip(leaf_names(data), obs.mask) if m]
    how = "named by obs=" if obs.chosen else "guessed from their shared leading axis"
    total, summed = np.ravel(np.asarray(a.total))[0], np.ravel(np.asarray(a.summed))[0]
    return (
        f"{what} treats the data as independent observations, but the log-likelihood is not "
        f"the sum of its per-observation terms on the leaves taken as observations "
        f"({', '.join(names)}, {how}; {res.nobs} rows): at the estimate loglik = {total:.10g} "
        f"while the terms sum to {summed:.10g} (or their gradients differ). The numbers would "
        "be wrong, so they are not computed. If other leaves hold the observations, name "
        "them with obs= (e.g. obs=['y', 'X'], each with one row per observation; a design "
        "matrix must be (n, p), not transposed), and give nobs= for BIC. A log-likelihood "
        "that does not split into per-observation terms (a time series written over the "
        "whole series, a term shared by all observations) has no OPG/sandwich/cluster "
        "covariance or nonparametric bootstrap here: use cov='observed' and "
        "kind='parametric'."
    )


def require_additive(res, what: str, batched: bool = False) -> None:
    """Raise ``ValueError`` unless the log-likelihood is a sum over the observation
    leaves at the estimate (``what`` names the operation, e.g. ``"cov='opg'"``).
    Also refuses when no leaf is taken as observations."""
    obs = getattr(res, "_obs", None)
    if obs is not None and not any(obs.mask):
        raise ValueError(
            f"{what} needs per-observation data, but no data leaf is taken as observations "
            "(data with a shared leading observation axis, or obs= naming those leaves)."
        )
    a = _host_check(res, batched)
    if a is None:
        return
    ok = np.asarray(is_additive(a, np))
    if not np.all(ok):
        if batched:
            i = int(np.flatnonzero(~ok)[0])
            a = jax.tree_util.tree_map(lambda v: v[i], a)
            what = f"{what} (fit {i} of the batch)"
        raise ValueError(refusal(res, what, a))


def checked_nobs(res, what: str):
    """``res.nobs`` for BIC/AICc: as given by ``nobs=``, or, when guessed, only after
    the observation leaves pass the additivity check (cached on the result);
    ``ValueError`` naming the leaves otherwise."""
    obs = getattr(res, "_obs", None)
    if obs is None or obs.nobs_given or res.nobs is None or _is_traced(res.loglik):
        return res.nobs
    failed = res.__dict__.get("_nobs_refused")
    if failed is None:
        batched = jnp.ndim(res.loglik) > 0
        a = _host_check(res, batched)
        ok = a is None or bool(np.all(is_additive(a, np)))
        failed = () if ok else (jax.tree_util.tree_map(lambda v: np.ravel(v)[0] if batched else v, a),)
        object.__setattr__(res, "_nobs_refused", failed)
    if failed:
        raise ValueError(refusal(res, what, failed[0]))
    return res.nobs
