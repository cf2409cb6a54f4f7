"""A multi-start fit as one compiled call: the fits from every start run through
:func:`mlejax.backends._batch.compiled_chunks` (the chunked vmap of ``fit_batch``) over the
stack of starting values, the data shared; the host then summarises the maxima
(:func:`mlejax._starts.summarise`) and keeps the best converged fit."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._fit import FitCore, _is_concrete, register_multi_start
from .._starts import best_start, start_values, summarise
from ._batch import bytes_per_fit, compiled_chunks


@dataclasses.dataclass(frozen=True)
class _StartMaker:
    """Builds the fit from one start: its values, the shared bounds and data."""

    def __call__(self, values, shared):
        dyn, data = shared
        return dyn._replace(values=values), data


def fit_from_starts(starts, key, spec, dyn, data, tol, maxiter, codes, static):
    """Fit from every start of ``starts`` (see :func:`mlejax._starts.start_values`) in one
    compiled call. Returns ``(core, dyn, summary)``: the :class:`mlejax._fit.FitCore` and
    the parametrisation of the best start, and the :class:`StartsSummary`."""
    if not all(map(_is_concrete, jax.tree_util.tree_leaves((dyn, data, tol)))):
        raise ValueError("starts= runs outside jax.jit/jax.vmap (it summarises the maxima on the host); "
                         "call mj.fit with concrete inputs, or vmap single-start fits yourself.")
    values = start_values(starts, key, spec, dyn)
    data_elems = sum(math.prod(jnp.shape(a)) for a in jax.tree_util.tree_leaves(data))
    # One pass with the full maxiter (not fit_batch's two): with a few dozen starts a
    # second compiled program for the slow ones costs more than it saves.
    args = (values, (dyn, data), np.asarray(tol, dyn.values[0].dtype), np.asarray(maxiter, np.int32), codes)
    per_fit = bytes_per_fit(data_elems, spec.nparams, static["cov_type"])
    out = compiled_chunks(args, _StartMaker(), static, None, per_fit)(*args)
    phi = jax.vmap(spec.natural_flat)(out["params"])
    se = jax.vmap(spec.natural_flat)(out["stderr"])
    summary = summarise(out["loglik"], out["converged"], phi, se, spec.names)
    i = summary.best if summary.best >= 0 else best_start(out["loglik"], out["converged"])
    pick = lambda tree: jax.tree_util.tree_map(lambda a: np.asarray(a[i]), tree)  # noqa: E731
    core = FitCore(**{f: pick(out[f]) for f in FitCore._fields})
    return core, pick(out["_dyn"]), summary


register_multi_start(fit_from_starts)
