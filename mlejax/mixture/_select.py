"""Choosing the number of mixture components by AIC/BIC."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._em import em


class ComponentSelection(NamedTuple):
    """One row per candidate number of components (numpy arrays), the chosen
    count by ``criterion`` and the fits themselves."""

    n_components: Any
    loglik: Any
    nparams: Any
    aic: Any
    bic: Any
    criterion: str
    best: int
    results: tuple

    @property
    def best_result(self):
        return self.results[int(np.flatnonzero(self.n_components == self.best)[0])]

    def __str__(self) -> str:
        head = f"{'K':>4} {'loglik':>14} {'nparams':>8} {'aic':>14} {'bic':>14}"
        rows = [
            f"{k:>4} {ll:>14.6g} {p:>8} {a:>14.6g} {b:>14.6g}{'  <-' if k == self.best else ''}"
            for k, ll, p, a, b in zip(self.n_components, self.loglik, self.nparams, self.aic, self.bic)
        ]
        return "\n".join([head, *rows, f"best by {self.criterion}: {self.best} components"])


def select_components(model, data, n_components=range(1, 7), *, criterion="bic", **em_kwargs):
    """Fit ``model`` with each number of components and compare AIC/BIC.

    ``model`` is a template such as ``mj.GaussianMixture(1, "full")``; its
    ``n_components`` is replaced by each value in ``n_components``. Keyword
    arguments go to :func:`mlejax.em` (``key``, ``n_init``, ``tol``, ``maxiter``,
    ``weights``; ``stderr`` defaults to False here). Each count has its own shapes,
    so each is one compiled fit (its ``n_init`` restarts vmapped).

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> x = np.random.default_rng(0).poisson(np.repeat([1.0, 12.0], 200))
        >>> sel = mj.select_components(mj.PoissonMixture(1), x, n_components=[1, 2, 3])
        >>> sel.best
        2
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion={criterion!r}; use 'aic' or 'bic'.")
    ks = [int(k) for k in n_components]
    if not ks or min(ks) < 1:
        raise ValueError(f"n_components={list(n_components)!r} must be a non-empty range of integers >= 1.")
    em_kwargs.setdefault("stderr", False)
    results = tuple(em(model.with_components(k), data, **em_kwargs) for k in ks)
    ll = np.array([float(r.loglik) for r in results])
    aic = np.array([float(r.aic) for r in results])
    bic = np.array([float(r.bic) for r in results])
    score = aic if criterion == "aic" else bic
    best = ks[int(np.nanargmin(score))]
    return ComponentSelection(
        np.array(ks), ll, np.array([r.nparams for r in results]), aic, bic, criterion, best, results
    )
