"""Formulas: ``"y ~ x1 + np.log(x2) + C(g)"`` and a DataFrame to a response, a design
matrix and its column names, through formulaic (the optional extra ``formula``;
imported only when a formula is used). Column names follow formulaic, which are
statsmodels'/patsy's: ``Intercept``, ``x1``, ``np.log(x2)``, ``C(g)[T.b]``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FORMULA_EXTRA = 'pip install "mlejax[formula]"  (formulaic)'


class Design(NamedTuple):
    """A formula's response ``y`` (n,), design matrix ``X`` (n, p), the names of the
    columns of ``X`` and the positions of the rows of ``data`` kept (rows with a
    missing value are dropped)."""

    y: np.ndarray
    X: np.ndarray
    names: tuple
    rows: np.ndarray
    response: str = "y"


def _formulaic():
    try:
        import formulaic
    except ImportError as e:
        raise ImportError(
            f"formulas need formulaic, an optional extra of mlejax; install it with {FORMULA_EXTRA}, "
            "or pass y and a design matrix X instead of a formula."
        ) from e
    return formulaic


def _labels(lhs):
    """The response as class labels: its values (one numeric column) or, for a
    categorical response formulaic encodes as indicator columns ``y[a]``, ``y[b]``...,
    the level of each row. Returns ``(labels, response name)``."""
    cols = [str(c) for c in lhs.columns]
    if len(cols) == 1:
        return np.asarray(lhs)[:, 0], cols[0]
    name = cols[0][: cols[0].rfind("[")]
    levels = np.array([c[len(name) + 1 : -1] for c in cols], dtype=object)
    return levels[np.argmax(np.asarray(lhs), axis=1)], name


def design(formula: str, data, labels: bool = False) -> Design:
    """Build ``(y, X, names)`` from a two-sided formula and a DataFrame (or a dict of
    columns). Rows with a missing value in a variable the formula uses are dropped
    (``rows`` lists the ones kept), as in statsmodels' formula API. ``labels``: the
    response is class labels (numbers or categories), not one number per row.

    Raises:
        ValueError naming ``formula`` when it has no response (``~`` missing) or names
        a column ``data`` lacks; ``TypeError`` naming ``data`` when it is missing.
        ImportError naming the extra when formulaic is not installed.
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula={formula!r} needs a response and terms, e.g. 'y ~ x1 + C(g)'.")
    if data is None:
        raise TypeError("data is missing: a formula needs data=, a pandas DataFrame (or a dict of columns).")
    formulaic = _formulaic()
    import pandas as pd  # formulaic depends on pandas

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    try:
        mm = formulaic.model_matrix(formula, frame, na_action="drop")
    except formulaic.errors.FormulaicError as e:
        raise ValueError(f"formula={formula!r} cannot be evaluated on data: {str(e).splitlines()[0]}") from None
    lhs, rhs = mm.lhs, mm.rhs
    if labels:
        y, response = _labels(lhs)
    elif lhs.shape[1] != 1:
        raise ValueError(f"formula={formula!r} has {lhs.shape[1]} response columns; give one response, e.g. 'y ~ x'.")
    else:
        y, response = np.asarray(lhs, dtype=float)[:, 0], str(lhs.columns[0])
    rows = frame.index.get_indexer(rhs.index) if len(rhs) < len(frame) else np.arange(len(frame))
    return Design(y, np.asarray(rhs, dtype=float), tuple(str(c) for c in rhs.columns), rows, response)


__all__ = ["Design", "design"]
