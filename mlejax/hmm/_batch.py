"""``mj.em_batch`` for hidden Markov models: Baum-Welch on many independent datasets
at once.

Each dataset is what :func:`mlejax.em` takes for an HMM (one sequence, a list of
sequences of any lengths, or a padded array with its lengths). All are padded to one
``(B, N, T, ...)`` array with masks (a padded sequence or step counts for nothing),
and the same pure Baum-Welch as ``mj.em`` (:func:`mlejax.hmm.hmm_pure`: the start,
the restarts, the one ``while_loop``) runs ``vmap``-ped over datasets in
memory-bounded chunks inside one compiled call; a second call with the same shapes
reuses it. A dataset whose fit fails only sets its own status.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import default_float_dtype
from .._jit import jit
from .._status import ConvergenceWarning
from ..backends._batch import chunked_vmap, plan_chunks
from ..mixture._batch import BatchMixtureResult
from ._result import HMMOutput, build_hmm_result, chunk_size, hmm_stderr


def _chunks(static, hyper, x, mask, observed, keys, tol, maxiter, init_method, n_init, chunk, n_chunks):
    model = static.with_hyper(hyper)

    def one(a):
        return model.pure(*a, None, tol, maxiter, init_method=init_method, n_init=n_init)

    return chunked_vmap(one, (x, mask, observed, keys), chunk, n_chunks)


_chunks_jit = jit(_chunks, static_argnums=(0, 8, 9, 10, 11))


def _stderr_chunks(static, hyper, params, x, mask, observed, seq_chunk, chunk, n_chunks):
    model = static.with_hyper(hyper)

    def one(a):
        se, _, _, not_negdef, not_identified, _, _ = hmm_stderr(model, *a, seq_chunk)
        return se, not_negdef | not_identified

    return chunked_vmap(one, (params, x, mask, observed), chunk, n_chunks)


_stderr_chunks_jit = jit(_stderr_chunks, static_argnums=(0, 6, 7, 8))


def _datasets(model, data, lengths, missing):
    """Each dataset validated as ``mj.em`` validates it (errors say which dataset)."""
    if not isinstance(data, (list, tuple, np.ndarray, jax.Array)) or isinstance(data, (np.ndarray, jax.Array)) and \
            data.ndim == 0:
        raise TypeError(f"data must be a sequence of datasets (a list, or an array with the datasets on axis 0); "
                        f"got {type(data).__name__}.")
    items = list(data)
    if not items:
        raise ValueError("data holds no datasets; give at least one.")
    if lengths is not None and len(lengths) != len(items):
        raise ValueError(f"lengths has {len(lengths)} entries for {len(items)} datasets; give one per dataset "
                         "(each as mj.em's lengths=), or None.")
    out = []
    for i, d in enumerate(items):
        try:
            seq = model.sequences(d, None if lengths is None else lengths[i], missing)
        except (TypeError, ValueError) as err:
            raise type(err)(f"dataset {i}: {err}") from None
        if int(np.sum(seq.observed)) < model.n_states:
            raise ValueError(f"dataset {i}: n_states={model.n_states} is more than its number of observations; "
                             "use fewer states.")
        out.append(seq)
    return out


def _stack(seqs):
    """(B, N, T, ...) observations, masks and observed masks over all datasets (padding
    repeats a dataset's first value and is masked out)."""
    n = max(s.x.shape[0] for s in seqs)
    t = max(s.x.shape[1] for s in seqs)
    event = seqs[0].x.shape[2:]
    if any(s.x.shape[2:] != event for s in seqs):
        raise ValueError(f"the datasets have different observation shapes {sorted({s.x.shape[2:] for s in seqs})}; "
                         "they must agree.")
    x = np.empty((len(seqs), n, t) + event)
    mask = np.zeros((len(seqs), n, t), bool)
    observed = np.zeros_like(mask)
    for i, s in enumerate(seqs):
        a, b = s.x.shape[:2]
        x[i] = s.x[0, 0]
        x[i, :a, :b] = s.x
        mask[i, :a, :b] = s.mask
        observed[i, :a, :b] = s.observed
    return jnp.asarray(x, default_float_dtype()), jnp.asarray(mask), jnp.asarray(observed)


def em_batch_hmm(model, data, *, key, n_init, maxiter, tol, init_method, batch_size, lengths=None,
                 missing="error", stderr=False) -> BatchHMMResult:
    """What :func:`mlejax.em_batch` runs for an HMM (see there); ``stderr=True`` adds the
    standard errors of every dataset, ``vmap``-ped in a second compiled call."""
    seqs = _datasets(model, data, lengths, missing)
    x, mask, observed = _stack(seqs)
    b, n, t = mask.shape
    keys = jax.random.split(jax.random.key(0) if key is None else key, b)
    d = int(np.prod(x.shape[3:]))
    per_fit = 8 * (n * t * (8 * model.n_states + 4 * d * d + 4) + 4096) * n_init
    chunk, n_chunks = plan_chunks(b, batch_size, per_fit)
    out = _chunks_jit(model.static(), model.hyper(), x, mask, observed, keys, jnp.asarray(tol, x.dtype),
                      jnp.asarray(maxiter, jnp.int32), init_method, n_init, chunk, n_chunks)
    se = bad_info = None
    if stderr:
        se, bad_info = _stderr_chunks_jit(model.static(), model.hyper(), out.params, x, mask, observed,
                                          chunk_size(model, x[0]), chunk, n_chunks)
    res = BatchHMMResult(params=out.params, loglik=out.loglik, converged=out.converged, n_iter=out.n_iter,
                         status=out.status, restart_logliks=out.restart_logliks, loglik_decreased=out.decreased,
                         collapsed=None, nobs=out.nobs, _x=tuple(seqs), _model=model, _tol=tol,
                         empty_states=out.empty, stderr=se, information_not_pd=bad_info)
    bad = {k: v for k, v in res.status_counts().items() if k != "SUCCESS"}
    empty = int(np.sum(np.any(np.asarray(out.empty), -1)))
    if bad or empty:
        parts = [f"{k} {v}" for k, v in bad.items()] + ([f"states without mass {empty}"] if empty else [])
        warnings.warn(f"em_batch: {sum(bad.values())} of {b} datasets did not converge, {empty} had a state that "
                      f"received no mass ({', '.join(parts)}); see res.status, res.empty_states and res[i].",
                      ConvergenceWarning, stacklevel=3)
    return res


@dataclasses.dataclass(frozen=True, eq=False)
class BatchHMMResult(BatchMixtureResult):
    """The result of :func:`mlejax.em_batch` for an HMM: ``params``, ``loglik``,
    ``n_iter``, ``status``, ``converged``, ``empty_states`` stacked over datasets;
    ``res[i]`` is dataset ``i`` as a full :class:`mlejax.HMMResult` (standard errors,
    ``decode``, ``predict_proba``...)."""

    empty_states: Any = None
    stderr: Any = None  # with stderr=True: like params, stacked (NaN where the information is not PD)
    information_not_pd: Any = None  # (B,) bool: the observed information is not positive definite

    def __getitem__(self, i):
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"dataset index {i} is out of range for a batch of {len(self)}.")
        pick = jax.tree_util.tree_map(lambda a: a[i], (self.params, self.loglik, self.n_iter, self.status,
                                                       self.loglik_decreased, self.empty_states, self.restart_logliks,
                                                       self.converged, self.nobs))
        return build_hmm_result(self._model, HMMOutput(*pick), self._x[i], tol=self._tol)

    def summary(self) -> str:
        text = super().summary()
        return text.replace("batch EM:", "batch Baum-Welch:", 1).replace(" components", " states", 1)


__all__ = ["BatchHMMResult", "em_batch_hmm"]
