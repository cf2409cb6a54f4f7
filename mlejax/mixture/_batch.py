"""``mj.em_batch``: EM for a mixture on many datasets of the same shape at once.

Each dataset runs the same pure EM as :func:`mlejax.em` (``_em.em_pure``: the
initialisation, the restarts and the one EM loop), ``vmap``-ped over datasets in
memory-bounded chunks inside one compiled call. A dataset whose fit fails only
sets its own status.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._jit import jit
from .._status import BatchStatus, ConvergenceWarning, Status
from .._tables import Table, Tabular
from ..backends._batch import chunked_vmap, plan_chunks
from ._em import DEFAULT_MAXITER, DEFAULT_TOL, EMOutput, check_em_options, em_pure, mark_too_few, n_distinct
from ._result import build_result

__all__ = ["em_batch", "BatchMixtureResult"]


def _em_chunks(static, hyper, x, keys, tol, maxiter, init_method, n_init, chunk, n_chunks):
    model = static.with_hyper(hyper)

    def one(xk):
        xi, ki = xk
        w = jnp.ones((xi.shape[0],), xi.dtype)
        return em_pure(model, xi, w, ki, None, tol, maxiter, init_method=init_method, n_init=n_init)

    return chunked_vmap(one, (x, keys), chunk, n_chunks)


_em_chunks_jit = jit(_em_chunks, static_argnums=(0, 6, 7, 8, 9))


def em_batch(model, data, *, key=None, n_init=1, maxiter=DEFAULT_MAXITER, tol=None,
             init_method="kmeans", batch_size=None, **hmm_options) -> BatchMixtureResult:
    """Fit ``model`` by EM to each of ``B`` datasets of the same shape, at once.

    ``em_batch(model, data, key=key)`` gives dataset ``i`` exactly what
    ``mj.em(model, data[i], key=jax.random.split(key, B)[i], ...)`` gives.

    Args:
        model: as for :func:`mlejax.em` (``mj.GaussianMixture(...)``, ...), or a hidden
            Markov model (``mj.HMM``, ``mj.GaussianHMM``, ``mj.GMMHMM``).
        data: shape ``(B, n, d)`` (or ``(B, n)``): ``B`` datasets of ``n`` observations.
            For an HMM: ``B`` datasets, each what ``mj.em`` takes (one sequence, a list
            of sequences of any lengths, or a padded array with ``lengths``); an array
            ``(B, T)`` / ``(B, T, d)`` is ``B`` single sequences. The datasets may differ
            in size (padded and masked inside the one compiled call).
        key: a ``jax.random`` key, split into one key per dataset (default
            ``jax.random.key(0)``, as for ``mj.em``).
        n_init, maxiter, tol, init_method: as for :func:`mlejax.em`, per dataset (the
            default ``tol`` is ``mj.em``'s: 1e-6 per observation for mixtures, 1e-2 on
            the total for HMMs).
        batch_size: datasets per ``vmap``-ped chunk (default: from a memory estimate,
            as in :func:`mlejax.fit_batch`).
        **hmm_options: for an HMM, ``lengths`` (one entry per dataset, each as
            ``mj.em``'s ``lengths=``), ``missing``, and ``stderr=True`` for the
            standard errors of every dataset in one more compiled call.

    Returns:
        A :class:`BatchMixtureResult`: ``params``, ``loglik``, ``n_iter``,
        ``status`` and ``converged`` stacked over datasets, ``status_counts()``,
        ``summary()``, and ``res[i]``: dataset ``i`` as a :class:`MixtureResult`
        (with its standard errors). A dataset with NaN/inf gets status
        ``NONFINITE_DATA`` instead of an error; one whose component collapsed
        (``collapsed``, (B, K)) ``UNBOUNDED``; one with fewer distinct points than
        components ``NOT_IDENTIFIED``. One warning counts them.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> x = np.random.default_rng(0).poisson(np.repeat([1.0, 9.0], 100), size=(3, 200))
        >>> res = mj.em_batch(mj.PoissonMixture(2), x)
        >>> res.params["rate"].shape, res.status_counts()
        ((3, 2), {'SUCCESS': 3})
    """
    if hasattr(model, "fit_em_batch"):  # models with their own data layout (hidden Markov models)
        return model.fit_em_batch(data, key=key, n_init=n_init, maxiter=maxiter, tol=tol, init_method=init_method,
                                  batch_size=batch_size, **hmm_options)
    if hmm_options:
        raise TypeError(f"em_batch() got unexpected keyword arguments {sorted(hmm_options)} (lengths= and missing= "
                        "are for hidden Markov models).")
    tol = DEFAULT_TOL if tol is None else tol
    n_init, maxiter, tol = check_em_options(model, n_init, maxiter, tol, init_method)
    try:
        arr = data if isinstance(data, jax.Array) else np.asarray(data)
    except ValueError as err:
        raise ValueError(
            "data is ragged (datasets of different shapes); em_batch needs B datasets of the "
            "same shape, an array (B, n) or (B, n, d). Fit datasets of different sizes with "
            "mj.em one at a time."
        ) from err
    if arr.ndim not in (2, 3) or arr.shape[0] == 0:
        raise ValueError(
            f"data has shape {arr.shape}; em_batch needs (B, n) or (B, n, d): B datasets of n "
            "observations."
        )
    finite = np.all(np.isfinite(np.asarray(arr).reshape(arr.shape[0], -1)), axis=1)
    good = int(np.argmax(finite)) if finite.any() else 0
    x0 = model.validate_data(arr[good]) if finite.any() else None
    if x0 is None:
        raise ValueError("every dataset contains NaN or inf; remove or impute those rows.")
    if hasattr(model, "bind"):
        model = model.bind(x0)
    x = jnp.asarray(arr, x0.dtype).reshape((arr.shape[0],) + x0.shape)
    b, n = x.shape[0], x.shape[1]
    if n < model.n_components:
        raise ValueError(
            f"n_components={model.n_components} is more than the number of observations per "
            f"dataset ({n})."
        )
    if key is None:
        key = jax.random.key(0)
    keys = jax.random.split(key, b)
    per_fit = 8 * (math.prod(x.shape[1:]) * model.n_components * 16 + 4096) * n_init
    chunk, n_chunks = plan_chunks(b, batch_size, per_fit)
    out = _em_chunks_jit.select(x.size)(
        model.static(),
        model.hyper(),
        x,
        keys,
        jnp.asarray(tol, x.dtype),
        jnp.asarray(maxiter, jnp.int32),
        init_method,
        n_init,
        chunk,
        n_chunks,
    )
    few = np.array([n_distinct(a) < model.n_components for a in np.asarray(arr)])
    status = mark_too_few(out.status, jnp.asarray(few))
    status = jnp.where(jnp.asarray(finite), status, int(Status.NONFINITE_DATA)).astype(jnp.int32)
    res = BatchMixtureResult(
        params=out.params,
        loglik=out.loglik,
        converged=status == int(Status.SUCCESS),
        n_iter=out.n_iter,
        status=status,
        restart_logliks=out.restart_logliks,
        loglik_decreased=out.decreased,
        collapsed=out.collapsed,
        nobs=out.nobs,
        _x=x,
        _model=model,
        _tol=tol,
    )
    _warn_em_batch(res, int(np.sum(few)), model.n_components)
    return res


def _warn_em_batch(res, few: int, k: int) -> None:
    """One warning counting the datasets whose EM did not succeed (by status: collapsed
    components are UNBOUNDED) and those with fewer distinct points than components
    (NOT_IDENTIFIED, as ``em`` warns for one dataset)."""
    counts = {name: v for name, v in res.status_counts().items() if name != "SUCCESS"}
    parts = [f"{name} {v}" for name, v in counts.items()]
    if few:
        parts.append(f"fewer distinct points than the {k} components {few}")
    if parts:
        warnings.warn(
            f"em_batch: {sum(counts.values())} of {len(res)} datasets did not converge or are "
            f"suspect ({', '.join(parts)}); see res.status, res.summary() and res[i].",
            ConvergenceWarning,
            stacklevel=3,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class BatchMixtureResult(BatchStatus, Tabular):
    """The result of :func:`mlejax.em_batch`: the fields of :class:`MixtureResult`
    that EM itself produces, each with a leading batch axis. ``res[i]`` is dataset
    ``i`` as a full :class:`MixtureResult` (standard errors computed then; a dataset
    with NaN/inf gives its status ``NONFINITE_DATA`` and no standard errors)."""

    _kind = "em"  # the EM messages of the one status table

    params: Any
    loglik: Any
    converged: Any
    n_iter: Any
    status: Any
    restart_logliks: Any
    loglik_decreased: Any
    collapsed: Any  # (B, K) components that collapsed (status UNBOUNDED)
    nobs: Any
    _x: Any = None
    _model: Any = None
    _tol: float = DEFAULT_TOL

    def __len__(self) -> int:
        return int(np.shape(self.loglik)[0])

    def __getitem__(self, i):
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"dataset index {i} is out of range for a batch of {len(self)}.")
        out = EMOutput(
            params=jax.tree_util.tree_map(lambda a: a[i], self.params),
            loglik=self.loglik[i],
            n_iter=self.n_iter[i],
            status=self.status[i],
            decreased=self.loglik_decreased[i],
            collapsed=self.collapsed[i],
            restart_logliks=self.restart_logliks[i],
            converged=self.converged[i],
            nobs=self.nobs[i],
            finite_data=self.status[i] != int(Status.NONFINITE_DATA),
        )
        x = self._x[i]
        return build_result(self._model, out, x, jnp.ones((x.shape[0],), x.dtype), tol=self._tol, batch_item=True)


    def summary(self) -> str:
        n, counts = len(self), self.status_counts()
        ok = counts.get("SUCCESS", 0)
        lines = [
            f"mlejax batch EM: {n} datasets, {self._model.n_components} components",
            f"Converged: {ok} of {n}",
        ]
        failed = [(k, v) for k, v in counts.items() if k != "SUCCESS"]
        if failed:
            lines.append("Not converged: " + ", ".join(f"{k} {v}" for k, v in failed))
        return "\n".join(lines)

    def _table(self) -> Table:
        rows = list(zip(np.asarray(self.loglik), np.asarray(self.n_iter),
                        [Status(int(s)).name for s in np.asarray(self.status)], np.asarray(self.converged)))
        return Table(self.summary().splitlines()[0], "dataset", tuple(range(len(self))),
                     ("loglik", "n_iter", "status", "converged"), rows)

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__
