"""mlejax.plot: every plot rendered to PNG with Agg, and its content checked against
the numbers it draws (profile interval ends, densities, quantiles, intervals)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mlejax as mj

matplotlib = pytest.importorskip("matplotlib")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mlejax.plot as mplot  # noqa: E402


def _png(ax, tmp_path, name):
    path = mplot.save(ax, tmp_path / f"{name}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000


def gamma_ll(p, x):
    return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["shape"], scale=1 / p["rate"]))


@pytest.fixture(scope="module")
def gamma_fit():
    x = np.random.default_rng(3).gamma(2.0, 1 / 1.5, 60)
    return mj.fit(gamma_ll, {"shape": mj.Positive(1.0), "rate": mj.Positive(1.0)}, x), x


def _vlines(ax):
    def vertical(ln):
        x = ln.get_xdata()
        return len(x) == 2 and x[0] == x[1] and ln.get_linestyle() in (":", "--")

    return sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines() if vertical(ln))


def test_profile_plot_lines_at_profile_interval(gamma_fit, tmp_path):
    res, _ = gamma_fit
    ax = mplot.profile(res, "shape")
    lo, hi = (float(v) for v in res.conf_int(0.95, method="profile")["shape"])
    assert _vlines(ax) == pytest.approx([lo, hi], rel=1e-12)
    crit = [ln for ln in ax.get_lines() if ln.get_label().startswith("cut-off")][0]
    assert float(crit.get_ydata()[0]) == pytest.approx(stats.chi2.ppf(0.95, 1), rel=1e-10)
    wald = [ln for ln in ax.get_lines() if ln.get_label() == "Wald parabola"][0]
    v, w = wald.get_data()
    est, se = float(res.params["shape"]), float(res.stderr["shape"])
    assert np.allclose(w, ((v - est) / se) ** 2)
    curve = [ln for ln in ax.get_lines() if ln.get_label() == "profile deviance"][0]
    assert np.interp(lo, *curve.get_data()) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=0.05)
    _png(ax, tmp_path, "profile")


def test_profile_2d_region(gamma_fit, tmp_path):
    res, x = gamma_fit
    fig, ax = plt.subplots()
    out = mplot.profile_2d(res, ("shape", "rate"), n=9, ax=ax)
    assert out is ax and ax.collections  # the contour sets
    # one grid point by hand: the profile over no other parameter is the log-likelihood itself
    from mlejax._profile import profile_2d

    gx, gy = np.array([1.8, 2.2]), np.array([1.2, 1.6])
    _, dev, ok = profile_2d(res, ("shape", "rate"), gx, gy)
    ll = stats.gamma.logpdf(x[:, None, None], gx[None, None, :], scale=1 / gy[None, :, None]).sum(0)
    assert ok.all() and np.allclose(dev, 2 * (float(res.loglik) - ll), rtol=1e-10)
    _png(ax, tmp_path, "profile2d")


def test_profile_2d_reoptimises_the_rest(tmp_path):
    x = np.random.default_rng(0).normal(1.0, 2.0, 50)
    ll = lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]) + 0 * p["c"])  # noqa: E731
    res = mj.fit(lambda p, x: ll(p, x) - 0.5 * p["c"] ** 2, {"mu": 0.0, "sigma": mj.Positive(1.0), "c": 1.0}, x)
    from mlejax._profile import profile_2d

    _, dev, _ = profile_2d(res, ("mu", "sigma"), np.array([0.5, 1.5]), np.array([1.8]))
    ref = stats.norm.logpdf(x[:, None], np.array([0.5, 1.5])[None], 1.8).sum(0)  # c re-maximised at 0
    assert np.allclose(dev[0], 2 * (float(res.loglik) - ref), rtol=1e-9)


def test_dist_diagnostics_against_scipy(gamma_fit, tmp_path):
    res, x = gamma_fit
    fam = mj.dist.Gamma()
    fd = mj.fit_dist(fam, x)
    axs = mplot.dist_diagnostics(fd, x, fam, others={"Weibull": (mj.fit_dist(mj.dist.Weibull(), x), mj.dist.Weibull())})
    assert len(axs) == 3
    a, r = float(fd.params["shape"]), float(fd.params["rate"])
    g, dens = axs[0].get_lines()[0].get_data()
    assert np.allclose(dens, stats.gamma.pdf(g, a, scale=1 / r), rtol=1e-8)
    q, xs = axs[1].get_lines()[0].get_data()
    ref_q = stats.gamma.ppf((np.arange(1, x.size + 1) - 0.5) / x.size, a, scale=1 / r)
    assert np.allclose(xs, np.sort(x)) and np.allclose(q, ref_q, rtol=2e-3, atol=1e-3)
    pr, f = axs[2].get_lines()[0].get_data()
    assert np.allclose(f, stats.gamma.cdf(np.sort(x), a, scale=1 / r), atol=1e-5)
    _png(axs, tmp_path, "diagnostics")
    # a discrete family: pmf and CDF by summation
    k = np.random.default_rng(1).poisson(3.0, 80)
    pf = mj.fit_dist(mj.dist.Poisson(), k)
    axs = mplot.dist_diagnostics(pf, k, mj.dist.Poisson())
    pr, f = axs[2].get_lines()[0].get_data()
    assert np.allclose(f, stats.poisson.cdf(np.sort(k), float(pf.params["rate"])), atol=1e-10)
    _png(axs, tmp_path, "diagnostics_poisson")


def test_mixture_plots(tmp_path):
    rng = np.random.default_rng(2)
    x2 = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(4, 0.7, (100, 2))]
    res = mj.em(mj.GaussianMixture(2), x2, stderr=False)
    ax = mplot.mixture(res, x2)
    colours = ax.collections[0].get_facecolors()[:, :3]
    resp = np.asarray(res.responsibilities(x2))
    palette = np.array([matplotlib.colors.to_rgb(f"C{k}") for k in range(2)])
    assert np.allclose(colours, resp @ palette, atol=1e-6)
    _png(ax, tmp_path, "mixture2d")
    x1 = x2[:, 0]
    r1 = mj.em(mj.GaussianMixture(2), x1[:, None], stderr=False)
    ax = mplot.mixture(r1, x1[:, None])
    g, total = ax.get_lines()[0].get_data()
    p = r1.params
    ref = sum(w * stats.norm.pdf(g, m[0], np.sqrt(c[0, 0])) for w, m, c in zip(p["weights"], p["means"], p["covariances"]))
    assert np.allclose(total, ref, rtol=1e-8)
    _png(ax, tmp_path, "mixture1d")


def test_trace_and_bootstrap(gamma_fit, tmp_path):
    res, x = gamma_fit
    ax = mplot.trace((np.arange(5), np.array([-10.0, -5, -4, -3.9, -3.89])))
    assert np.allclose(ax.get_lines()[0].get_ydata(), [-10, -5, -4, -3.9, -3.89])
    _png(ax, tmp_path, "trace")
    boot = mj.bootstrap(res, jax.random.key(0), n_boot=200)
    ax = mplot.bootstrap(boot, "rate")
    lo, hi = (float(v) for v in boot.conf_int(0.95, "percentile")["rate"])
    ends = [float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert lo in ends and hi in ends
    assert sum(p.get_height() for p in ax.patches) == boot.n_boot - boot.n_failed
    _png(ax, tmp_path, "bootstrap")


def test_ax_is_used_and_returned(gamma_fit):
    res, _ = gamma_fit
    fig, ax = plt.subplots()
    assert mplot.profile(res, "rate", np.linspace(0.9, 2.6, 9), ax=ax) is ax
    plt.close(fig)


def test_hmm_states_plot(tmp_path):
    rng = np.random.default_rng(4)
    s = np.repeat([0, 1, 0, 1], 40)
    x = np.where(s == 0, rng.normal(0, 1, s.size), rng.normal(4, 1, s.size))[:, None]
    res = mj.em(mj.GaussianHMM(2, "diag"), x, stderr=False)
    ax = mplot.hmm_states(res, x)
    states = np.asarray(res.decode(x))
    steps = ax.get_lines()[0].get_ydata()
    assert np.allclose(steps, np.asarray(res.params["means"])[states, 0])
    assert np.mean(steps > 2) == pytest.approx(np.mean(s == 1), abs=0.03)  # the regimes are found
    _png(ax, tmp_path, "hmm")


def test_hmm_states_plot_poisson_rates():
    rng = np.random.default_rng(5)
    s = np.repeat([0, 1, 0, 1], 30)
    x = rng.poisson(np.where(s == 0, 2.0, 12.0)).astype(float)
    res = mj.em(mj.HMM(mj.dist.Poisson(), 2), x, stderr=False)
    ax = mplot.hmm_states(res, x)
    steps = ax.get_lines()[0].get_ydata()
    assert np.allclose(steps, np.asarray(res.params["rate"])[np.asarray(res.decode(x))])  # the rate is the state mean
    plt.close(ax.figure)
