"""One table per result, three renderings: ``summary()`` text, the notebook HTML
display and ``to_dataframe()`` (pandas, imported only there).

Every result type other than :class:`mlejax.FitResult` (which has its own
statsmodels-style layout) describes itself once as a :class:`Table`; the mixin
:class:`Tabular` (or the three functions, for NamedTuple results) renders it.
"""

from __future__ import annotations

import html
from typing import Any, NamedTuple

import jax
import numpy as np


class Table(NamedTuple):
    title: str
    index_name: str
    index: tuple
    columns: tuple
    rows: list  # one tuple of values per index entry
    notes: tuple = ()


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def table_text(t: Table) -> str:
    cells = [[str(i)] + [_cell(v) for v in r] for i, r in zip(t.index, t.rows)]
    head = [t.index_name] + list(t.columns)
    widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(head)]
    fmt = lambda row: "  ".join(  # noqa: E731
        (c.ljust(w) if j == 0 else c.rjust(w)) for j, (c, w) in enumerate(zip(row, widths))
    )
    line = "-" * len(fmt(head))
    return "\n".join([t.title, line, fmt(head), line, *map(fmt, cells), line, *t.notes])


def table_html(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in (t.index_name, *t.columns))
    body = "".join(
        f"<tr><th>{e(str(i))}</th>" + "".join(f"<td>{e(_cell(v))}</td>" for v in r) + "</tr>"
        for i, r in zip(t.index, t.rows)
    )
    notes = "".join(f"<p>{e(n)}</p>" for n in t.notes)
    return f"<div><b>{e(t.title)}</b><table><tr>{head}</tr>{body}</table>{notes}</div>"


def table_frame(t: Table, what: str):
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - exercised with pandas missing
        raise ImportError(
            f"{what}.to_dataframe() needs pandas, which mlejax does not require; install it "
            "with `pip install pandas`, or use summary()."
        ) from err
    df = pd.DataFrame([list(r) for r in t.rows], index=list(t.index), columns=list(t.columns))
    df.index.name = t.index_name
    return df


class Tabular:
    """``summary()``, ``_repr_html_`` and ``to_dataframe()`` from ``_table()``."""

    def _table(self) -> Table:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def summary(self) -> str:
        return table_text(self._table())

    def _repr_html_(self) -> str:
        return table_html(self._table())

    def to_dataframe(self) -> Any:
        """The result's table as a ``pandas.DataFrame`` (pandas is optional)."""
        return table_frame(self._table(), type(self).__name__)

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__


def flat_named(tree):
    """``(names, values)`` of the elements of a pytree of arrays (``"means[1,0]"``)."""
    out_names, out_vals = [], []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.asarray(leaf)
        base = jax.tree_util.keystr(path).replace("['", "").replace("']", ".").rstrip(".") or "value"
        base = base.replace(".[", "[")
        for idx in np.ndindex(*a.shape):
            out_names.append(base + (f"[{','.join(map(str, idx))}]" if idx else ""))
            out_vals.append(a[idx])
    return out_names, out_vals
