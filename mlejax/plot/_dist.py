"""``fit_dist`` diagnostics: histogram with the fitted density, QQ and PP plots.

The fitted CDF is computed from the family's log-density (numerical integration
on a fine grid for continuous families, a cumulative sum for discrete ones), so
every ``mlejax.dist`` family, built-in or user-written, gets the same plots."""

from __future__ import annotations

import numpy as np

from ..dist._families import DISCRETE_SUPPORTS
from ._common import axes, pyplot


def _logpdf(family, res, t):
    import jax.numpy as jnp

    return np.asarray(family.logpdf(res.params, jnp.asarray(t, jnp.result_type(float))))


def _grid(family, x, m=20001):
    x = np.asarray(x, float)
    lo, hi, s = x.min(), x.max(), x.std() + 1e-12
    if family.support in DISCRETE_SUPPORTS:
        return np.arange(max(0.0, np.floor(lo - 10 * s)), np.ceil(hi + 10 * s) + 1)
    a = 0.0 if family.support in ("positive", "unit") else lo - 12 * s
    b = 1.0 if family.support == "unit" else hi + 12 * s
    return np.linspace(a, b, m)[1:-1] if family.support in ("positive", "unit") else np.linspace(a, b, m)


def cdf(family, res, x):
    """The fitted CDF at ``x`` (and the grid it was computed on)."""
    g = _grid(family, x)
    p = np.exp(_logpdf(family, res, g))
    if family.support in DISCRETE_SUPPORTS:
        c = np.cumsum(p)
        return np.interp(np.floor(x), g, c, left=0.0, right=1.0), g, c
    c = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(g))])
    c = c / c[-1]
    return np.interp(x, g, c), g, c


def density(res, x, family, *, others=None, bins="auto", ax=None):
    """Histogram of ``x`` with the fitted density (pmf for a discrete family);
    ``others`` is a dict ``label -> (result, family)`` of rival fits drawn thinner.
    Returns the Axes."""
    ax = axes(ax)
    x = np.asarray(x, float)
    fits = {type(family).__name__: (res, family), **(others or {})}
    if family.support in DISCRETE_SUPPORTS:
        k, c = np.unique(x, return_counts=True)
        ax.bar(k, c / x.size, width=0.8, color="0.8", label="data")
    else:
        ax.hist(x, bins=bins, density=True, color="0.8", edgecolor="white", label="data")
    for i, (label, (r, fam)) in enumerate(fits.items()):
        g = _grid(fam, x, 801) if fam.support not in DISCRETE_SUPPORTS else np.arange(x.min(), x.max() + 1)
        g = g[(g >= x.min() - 0.1 * np.ptp(x)) & (g <= x.max() + 0.1 * np.ptp(x))]
        ax.plot(g, np.exp(_logpdf(fam, r, g)), color=f"C{i}", lw=2.2 if i == 0 else 1.2,
                marker="o" if fam.support in DISCRETE_SUPPORTS else None, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax


def qq(res, x, family, *, ax=None):
    """Quantile-quantile plot: sorted data against the fitted quantiles at the
    plotting positions ``(i - 0.5) / n``. Returns the Axes."""
    ax = axes(ax)
    xs = np.sort(np.asarray(x, float))
    _, g, c = cdf(family, res, xs)
    probs = (np.arange(1, xs.size + 1) - 0.5) / xs.size
    discrete = family.support in DISCRETE_SUPPORTS
    q = g[np.minimum(np.searchsorted(c, probs), g.size - 1)] if discrete else np.interp(probs, c, g)
    ax.plot(q, xs, ".", color="C0", ms=4)
    lim = [min(q.min(), xs.min()), max(q.max(), xs.max())]
    ax.plot(lim, lim, color="0.4", lw=1)
    ax.set_xlabel(f"fitted {type(family).__name__} quantiles")
    ax.set_ylabel("data quantiles")
    ax.set_title("QQ", fontsize="medium")
    return ax


def pp(res, x, family, *, ax=None):
    """Probability-probability plot: the fitted CDF at the sorted data against the
    plotting positions. Returns the Axes."""
    ax = axes(ax)
    xs = np.sort(np.asarray(x, float))
    f, _, _ = cdf(family, res, xs)
    probs = (np.arange(1, xs.size + 1) - 0.5) / xs.size
    ax.plot(probs, f, ".", color="C0", ms=4)
    ax.plot([0, 1], [0, 1], color="0.4", lw=1)
    ax.set_xlabel("empirical probability")
    ax.set_ylabel(f"fitted {type(family).__name__} CDF")
    ax.set_title("PP", fontsize="medium")
    return ax


def dist_diagnostics(res, x, family, *, others=None, axes=None):
    """The three ``fit_dist`` diagnostics side by side (density, QQ, PP); ``axes`` is
    a sequence of three Axes (default: a new 1 x 3 figure). Returns the three Axes.

    Examples:
        >>> import numpy as np, mlejax as mj, matplotlib; matplotlib.use("Agg")
        >>> x = np.random.default_rng(0).gamma(2.0, 1.0, 200)
        >>> axs = mj.plot.dist_diagnostics(mj.fit_dist(mj.dist.Gamma(), x), x, mj.dist.Gamma())
        >>> len(axs)
        3
    """
    if axes is None:
        axes = pyplot().subplots(1, 3, figsize=(13, 4))[1]
    density(res, x, family, others=others, ax=axes[0])
    qq(res, x, family, ax=axes[1])
    pp(res, x, family, ax=axes[2])
    return np.asarray(axes)
