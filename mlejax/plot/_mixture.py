"""A fitted mixture: its density over a histogram (1-D), or its density contours
with the points coloured by their responsibilities (2-D)."""

from __future__ import annotations

import numpy as np

from ._common import axes


def mixture(res, x, *, bins="auto", n=200, ax=None):
    """Draw a fitted mixture (a ``MixtureResult``) with its data ``x``.

    One-dimensional data: histogram, the mixture density and each weighted
    component. Two-dimensional: the points, each coloured by its responsibilities
    (the mix of the component colours), and contours of the mixture density.
    Returns the Axes.
    """
    import jax.numpy as jnp

    ax = axes(ax)
    x = np.asarray(x, float)
    x2 = x.reshape(x.shape[0], -1)
    d = x2.shape[1]
    if d == 1:
        g = np.linspace(x2.min() - 0.1 * np.ptp(x2), x2.max() + 0.1 * np.ptp(x2), n)
        gg = jnp.asarray(g.reshape((-1,) + x.shape[1:]))
        joint = np.exp(np.asarray(res._model.log_joint(res.params, res._x(gg))))
        ax.hist(x2[:, 0], bins=bins, density=True, color="0.8", edgecolor="white", label="data")
        ax.plot(g, joint.sum(axis=1), color="k", lw=2, label="mixture")
        for k in range(joint.shape[1]):
            ax.plot(g, joint[:, k], color=f"C{k}", lw=1, ls="--", label=f"component {k}")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
        return ax
    if d != 2:
        raise ValueError(f"x has {d} dimensions; mixture() draws 1-d or 2-d data (pick two columns).")
    resp = np.asarray(res.responsibilities(jnp.asarray(x)))
    import matplotlib.colors as mcolors

    palette = np.array([mcolors.to_rgb(f"C{k}") for k in range(resp.shape[1])])
    ax.scatter(x2[:, 0], x2[:, 1], c=np.clip(resp @ palette, 0, 1), s=8, alpha=0.8)
    pad = 0.1 * np.ptp(x2, axis=0)
    gx = np.linspace(x2[:, 0].min() - pad[0], x2[:, 0].max() + pad[0], n // 2)
    gy = np.linspace(x2[:, 1].min() - pad[1], x2[:, 1].max() + pad[1], n // 2)
    xx, yy = np.meshgrid(gx, gy)
    dens = np.exp(np.asarray(res.score_samples(jnp.asarray(np.column_stack([xx.ravel(), yy.ravel()])))))
    ax.contour(xx, yy, dens.reshape(xx.shape), levels=8, colors="0.3", linewidths=0.8)
    means = np.asarray(res.params["means"]) if "means" in res.params else None
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], c=palette, marker="X", s=120, edgecolors="k")
    ax.set_title("mixture density; points coloured by responsibility", fontsize="medium")
    return ax
