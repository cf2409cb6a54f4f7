"""Profiles, confidence regions, convergence traces and bootstrap distributions."""

from __future__ import annotations

import math

import numpy as np

from .._profile import profile_2d as _profile_2d
from ._common import axes


def _chi2_1(level):
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0) ** 2


def _flat(res, tree_of_pairs, name):
    """The (low, high) of element ``name`` from a pytree of pairs like ``params``."""
    import jax

    k = res.names.index(name)
    pick = lambda i: jax.tree_util.tree_map(lambda t: t[i], tree_of_pairs, is_leaf=lambda t: isinstance(t, tuple))  # noqa: E731
    return float(res._spec.natural_flat(pick(0))[k]), float(res._spec.natural_flat(pick(1))[k])


def _estimate(res, name):
    d = res.to_dict()
    return d["params"][name], d["stderr"][name]


def _span(res, name, a, b, n):
    """``n`` points from ``a`` to ``b``, pulled strictly inside the parameter's constraint."""
    est, _ = _estimate(res, name)
    low, high = (float(np.asarray(v)[res.names.index(name)]) for v in res._spec.bounds_flat(res._dyn))
    if math.isfinite(low):
        a = max(a, low + 0.02 * (est - low))
    if math.isfinite(high):
        b = min(b, high - 0.02 * (high - est))
    return np.linspace(a, b, n)


def profile(res, name, grid=None, *, level=0.95, n=41, ax=None, progress=None):
    """The profile deviance ``2 (loglik_hat - profile loglik)`` of one parameter.

    Draws the curve, the likelihood-ratio cut-off (chi-squared(1) quantile at
    ``level``), the profile interval's ends (``res.conf_int(level, "profile")``) and
    the Wald parabola ``((v - estimate) / stderr)^2``; where they differ the Wald
    interval is not to be trusted.

    Args:
        res: a single ``FitResult``. name: a free parameter's name (``res.names``).
        grid: values of the parameter (default: ``n`` points spanning the profile
            interval and a margin). level: the interval's level. ax: an Axes.
        progress: progress of the interval and the curve (:mod:`mlejax.progress`).

    Returns:
        The Axes.

    Examples:
        >>> import jax, jax.numpy as jnp, mlejax as mj, matplotlib; matplotlib.use("Agg")
        >>> ll = lambda p, x: jnp.sum(jnp.log(p["rate"]) - p["rate"] * x)
        >>> res = mj.fit(ll, {"rate": mj.Positive(1.0)}, jnp.array([0.5, 1.2, 0.3, 2.0]))
        >>> ax = mj.plot.profile(res, "rate")
    """
    ax = axes(ax)
    est, se = _estimate(res, name)
    lo, hi = _flat(res, res.conf_int(level, method="profile", progress=progress), name)
    if grid is None:
        a = lo if math.isfinite(lo) else est - 4 * se
        b = hi if math.isfinite(hi) else est + 4 * se
        pad = 0.25 * (b - a)
        grid = _span(res, name, a - pad, b + pad, n)
    prof = res.profile(name, grid, progress=progress)
    v, dev = np.asarray(prof.values), np.asarray(prof.deviance)
    crit = _chi2_1(level)
    ax.plot(v, dev, color="C0", lw=2, label="profile deviance")
    if math.isfinite(se) and se > 0:
        ax.plot(v, ((v - est) / se) ** 2, color="C1", ls="--", label="Wald parabola")
    ax.axhline(crit, color="0.4", lw=1, label=f"cut-off {crit:.3g} ({level:.0%})")
    for end in (lo, hi):
        if math.isfinite(end):
            ax.axvline(end, color="C3", lw=1, ls=":")
    ax.plot([], [], color="C3", ls=":", label=f"profile interval [{lo:.4g}, {hi:.4g}]")
    ax.set_xlabel(name)
    ax.set_ylabel("deviance 2 (loglik max - profile)")
    ax.set_ylim(0, max(2.0 * crit, float(np.nanmax(dev[np.isfinite(dev)])) if np.any(np.isfinite(dev)) else 1.0))
    ax.legend(fontsize="small")
    return ax


def profile_2d(res, names, grids=None, *, levels=(0.68, 0.95), n=25, ax=None, progress=None):
    """The joint profile-likelihood confidence region of two parameters: contours of
    the profile deviance at the chi-squared(2) quantiles of ``levels``, with the
    estimate marked. ``grids`` is a pair of 1-d grids (default: ``n`` points over
    +-3.5 standard errors, kept inside the constraints). ``progress``: the grid
    points done (:mod:`mlejax.progress`). Returns the Axes."""
    ax = axes(ax)
    (ex, sx), (ey, sy) = (_estimate(res, nm) for nm in names)
    if grids is None:
        grids = [_span(res, nm, e - 3.5 * s, e + 3.5 * s, n) for nm, (e, s) in zip(names, ((ex, sx), (ey, sy)))]
    gx, gy = (np.asarray(g, float) for g in grids)
    _, dev, _ = _profile_2d(res, names, gx, gy, progress)
    crit = [-2.0 * math.log(1.0 - lv) for lv in levels]  # chi-squared(2) quantiles
    cs = ax.contour(gx, gy, dev, levels=sorted(crit), colors=["C0", "C3"][: len(crit)])
    ax.clabel(cs, fmt={c: f"{lv:.0%}" for c, lv in zip(sorted(crit), sorted(levels))}, fontsize="small")
    ax.plot([ex], [ey], "k+", ms=10, label="estimate")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("profile-likelihood confidence region", fontsize="medium")
    return ax


def trace(recorder, *, ax=None):
    """The log-likelihood per iteration: ``recorder`` is a
    :class:`mlejax.progress.Recorder` passed as ``progress=`` to a fit (or a pair of
    arrays ``(iterations, loglik)``). Returns the Axes."""
    ax = axes(ax)
    it, ll = (recorder.iterations, recorder.loglik) if hasattr(recorder, "loglik") else recorder
    ax.plot(np.asarray(it), np.asarray(ll), marker=".", color="C0")
    ax.set_xlabel("iteration")
    ax.set_ylabel("log-likelihood")
    ax.set_title("convergence", fontsize="medium")
    return ax


def bootstrap(boot, name, *, level=0.95, methods=("percentile", "basic"), bins=40, ax=None):
    """The bootstrap distribution of one parameter (converged replicates) with the
    estimate and the intervals of ``methods`` (see ``BootstrapResult.conf_int``).
    Returns the Axes."""
    ax = axes(ax)
    k = boot.names.index(name)
    reps = np.asarray(boot._ok())[:, k]
    ax.hist(reps, bins=bins, color="0.75", edgecolor="white", label=f"{reps.size} replicates")
    ax.axvline(float(np.asarray(boot._phi)[k]), color="k", lw=1.5, label="estimate")
    for i, m in enumerate(methods):
        lo, hi = _flat(boot._fit, boot.conf_int(level, method=m), name)
        for end in (lo, hi):
            ax.axvline(end, color=f"C{i}", ls="--", lw=1.2)
        ax.plot([], [], color=f"C{i}", ls="--", label=f"{m} {level:.0%}: [{lo:.4g}, {hi:.4g}]")
    ax.set_xlabel(name)
    ax.set_ylabel("count")
    ax.legend(fontsize="small")
    return ax


def _state_means(params, k, column):
    """Each state's mean of feature ``column``: Gaussian means, a GMM-HMM's weighted
    component means, or a Poisson rate; None for other emissions."""
    if "means" in params:
        mu = np.asarray(params["means"])
        if "weights" in params:  # GMM-HMM: (K, M, d)
            mu = np.einsum("km,kmd->kd", np.asarray(params["weights"]), mu)
        return mu.reshape(k, -1)[:, column]
    return np.asarray(params["rate"]).reshape(k) if "rate" in params else None


def hmm_states(res, x, *, column=0, ax=None):
    """A series with its HMM states: the observations (``x[:, column]``) coloured by
    their Viterbi state, each state's mean as a step line, and the posterior state
    probabilities (``res.predict_proba``) stacked on a twin axis. ``x`` is one
    sequence, ``(T,)`` or ``(T, d)``. Returns the Axes."""
    ax = axes(ax)
    xv = np.asarray(x, float)
    x2 = xv.reshape(xv.shape[0], -1)
    t = np.arange(x2.shape[0])
    states = np.asarray(res.decode(xv)).astype(int)
    post = np.asarray(res.predict_proba(xv))
    means = _state_means(res.params, post.shape[1], column)
    twin = ax.twinx()
    twin.stackplot(t, post.T, colors=[f"C{k}" for k in range(post.shape[1])], alpha=0.15)
    twin.set_ylim(0, 1)
    twin.set_ylabel("posterior state probability")
    ax.scatter(t, x2[:, column], c=[f"C{k}" for k in states], s=8, zorder=3)
    if means is not None:
        ax.step(t, means[states], where="mid", color="k", lw=1, label="state mean (Viterbi path)")
    ax.set_xlabel("time")
    ax.set_ylabel(f"x[:, {column}]")
    ax.legend(fontsize="small", loc="upper left")
    return ax
