"""Choosing the number of mixture components by AIC/BIC."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._tables import Table, Tabular
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

    def _table(self) -> Table:
        rows = [(ll, p, a, b, k == self.best)
                for k, ll, p, a, b in zip(self.n_components, self.loglik, self.nparams, self.aic, self.bic)]
        return Table("mlejax component selection", "K", tuple(int(k) for k in self.n_components),
                     ("loglik", "nparams", "aic", "bic", "best"), rows,
                     (f"best by {self.criterion}: {self.best} components",))

    # a NamedTuple takes no mixin base: Tabular's methods, assigned
    summary = Tabular.summary
    _repr_html_ = Tabular._repr_html_
    to_dataframe = Tabular.to_dataframe

    def __str__(self) -> str:
        return self.summary()


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
