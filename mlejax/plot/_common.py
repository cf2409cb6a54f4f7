"""matplotlib, imported lazily, and the ``ax=`` convention."""

from __future__ import annotations

PLOT_EXTRA = 'pip install "mlejax[plot]"  (matplotlib)'


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"mlejax.plot needs matplotlib, an optional extra; install it with {PLOT_EXTRA}.") from e
    return plt


def axes(ax=None, **subplot_kw):
    """``ax``, or the Axes of a new figure."""
    if ax is not None:
        return ax
    return pyplot().subplots(**subplot_kw)[1]


def save(ax, path, dpi=110):
    """Write the figure holding ``ax`` (an Axes or an array of them) to ``path``;
    returns ``path``."""
    first = ax.flat[0] if hasattr(ax, "flat") else ax
    fig = first.figure
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
