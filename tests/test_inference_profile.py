"""Profile likelihood. Oracles: exact likelihood-ratio intervals by scipy.optimize.brentq on
the analytic (profile) log-likelihood; statsmodels fits with an offset for a GLM."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import brentq
from scipy.stats import chi2

import mlejax as mj

RTOL = 1e-6


def _lr_interval(pll, hat, lo, hi, level=0.95):
    """Exact LR interval of a scalar profile log-likelihood, by brentq on each side."""
    c = chi2.ppf(level, 1)
    f = lambda v: 2.0 * (pll(hat) - pll(v)) - c  # noqa: E731
    return brentq(f, lo, hat, xtol=1e-14, rtol=1e-15), brentq(f, hat, hi, xtol=1e-14, rtol=1e-15)


TRACES = []


def normal_ll(p, x):
    TRACES.append(1)  # counts traces: a compiled function reused does not call this
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], jnp.sqrt(p["var"])))


X = np.random.default_rng(1).normal(2.0, 1.5, size=30)


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_normal_variance_equals_exact_lr_interval(level):
    res = mj.fit(normal_ll, {"mu": 0.0, "var": mj.Positive(1.0)}, X)
    n, s = X.size, np.sum((X - X.mean()) ** 2)
    pll = lambda v: -n / 2 * np.log(v) - s / (2 * v)  # noqa: E731  (mu profiled out: mu = mean)
    lo, hi = _lr_interval(pll, s / n, 1e-8, 100.0, level)
    ci = res.conf_int(level, method="profile")
    np.testing.assert_allclose([float(ci["var"][0]), float(ci["var"][1])], [lo, hi], rtol=RTOL)
    # mu: the profile deviance is n log(1 + n (mean - mu)^2 / S)
    pll_mu = lambda m: -n / 2 * np.log(s + n * (X.mean() - m) ** 2)  # noqa: E731
    lo, hi = _lr_interval(pll_mu, X.mean(), -50.0, 50.0, level)
    np.testing.assert_allclose([float(ci["mu"][0]), float(ci["mu"][1])], [lo, hi], rtol=RTOL)


def test_exponential_rate_equals_exact_lr_interval():
    x = np.random.default_rng(2).exponential(0.5, size=25)

    def ll(p, x):  # a shifted exponential with the shift held fixed at 0
        return jnp.sum(jnp.log(p["rate"]) - p["rate"] * (x - p["shift"]))

    res = mj.fit(ll, {"rate": mj.Positive(1.0), "shift": mj.Fixed(0.0)}, x)
    n, t = x.size, x.sum()
    lo, hi = _lr_interval(lambda r: n * np.log(r) - r * t, n / t, 1e-8, 100.0)
    ci = res.conf_int(method="profile")
    got = ci["rate"]
    np.testing.assert_allclose([float(got[0]), float(got[1])], [lo, hi], rtol=RTOL)
    assert float(got[0]) > 0.0
    assert np.isnan(float(ci["shift"][0])) and np.isnan(float(ci["shift"][1]))


def bernoulli_ll(p, y):
    return jnp.sum(y * jnp.log(p["p"]) + (1 - y) * jnp.log1p(-p["p"]))


def test_bernoulli_near_zero_profile_stays_inside_while_wald_does_not():
    y = np.zeros(50)
    y[0] = 1.0  # 1 success in 50
    res = mj.fit(bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, y)
    plo, phi = (float(v) for v in res.conf_int(method="profile")["p"])
    wlo, _ = (float(v) for v in res.conf_int()["p"])
    assert wlo < 0.0
    assert 0.0 < plo < 0.02 < phi < 1.0
    lo, hi = _lr_interval(lambda p: np.log(p) + 49 * np.log1p(-p), 0.02, 1e-12, 0.999)
    np.testing.assert_allclose([plo, phi], [lo, hi], rtol=RTOL)


def test_bernoulli_all_zero_lower_end_is_the_bound():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLE at the bound: flagged, tested elsewhere
        res = mj.fit(bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, np.zeros(50))
    lo, hi = res.conf_int(method="profile")["p"]
    assert float(lo) == 0.0
    # D(p) = -2 * 50 log(1 - p) = chi2 quantile
    np.testing.assert_allclose(float(hi), -np.expm1(-chi2.ppf(0.95, 1) / 100), rtol=RTOL)


def logit_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def _logit_data():
    rng = np.random.default_rng(3)
    n = 120
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ np.array([-0.2, 0.9, 0.4])))).astype(float)
    return x, y


def test_profile_curve_of_array_element_matches_statsmodels_offset_fits():
    x, y = _logit_data()
    res = mj.fit(logit_ll, {"beta": jnp.zeros(3)}, {"X": x, "y": y})
    full = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-14)
    grid = np.array([0.0, 0.2, 0.5, 0.8])
    prof = res.profile("beta[2]", grid)
    # oracle: fix beta[2] = b by an offset, maximise over the rest with statsmodels
    oracle = [
        sm.Logit(y, x[:, :2], offset=b * x[:, 2]).fit(disp=0, method="newton", tol=1e-14).llf
        for b in grid
    ]
    assert prof.name == "beta[2]" and np.all(np.asarray(prof.converged))
    np.testing.assert_allclose(np.asarray(prof.loglik), oracle, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(prof.deviance), 2 * (full.llf - np.array(oracle)), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(prof.params["beta"][:, 2]), grid)
    # the interval ends: 2 (llf - profile(end)) equals the chi2 quantile per statsmodels
    ci = res.conf_int(method="profile")["beta"]
    for b in (float(ci[0][2]), float(ci[1][2])):
        llf_b = sm.Logit(y, x[:, :2], offset=b * x[:, 2]).fit(disp=0, method="newton", tol=1e-14).llf
        np.testing.assert_allclose(2 * (full.llf - llf_b), chi2.ppf(0.95, 1), rtol=1e-6)
    # the profile interval is close to the Wald one for this well-behaved model
    wald = res.conf_int()["beta"]
    np.testing.assert_allclose(np.asarray(ci[0]), np.asarray(wald[0]), atol=0.1)


def test_compiles_once_per_shape():
    init = {"mu": 0.0, "var": mj.Positive(1.0)}
    res = mj.fit(normal_ll, init, X)
    res.conf_int(method="profile")
    res.profile("var", np.linspace(1.0, 2.0, 5))
    before = len(TRACES)
    res2 = mj.fit(normal_ll, init, X + 1.0)  # new numbers, same shapes
    assert len(TRACES) == before  # the fit itself is cached too
    res2.conf_int(0.9, method="profile")
    res2.conf_int(0.99, method="profile")
    res2.profile("mu", np.linspace(2.0, 3.0, 5))  # another parameter, same grid length
    res2.profile("var", np.linspace(1.5, 2.5, 5))
    assert len(TRACES) == before


def test_profile_bad_input():
    res = mj.fit(logit_ll, {"beta": jnp.zeros(3)}, dict(zip(("X", "y"), _logit_data())))
    with pytest.raises(ValueError, match=r"'beta' is an array; name one element, e.g. 'beta\[0\]'"):
        res.profile("beta", [0.0, 1.0])
    with pytest.raises(ValueError, match="name='gamma' is not a free parameter"):
        res.profile("gamma", [0.0])
    with pytest.raises(ValueError, match="grid must be a non-empty 1-d array"):
        res.profile("beta[0]", [[0.0, 1.0]])
    pos = mj.fit(normal_ll, {"mu": 0.0, "var": mj.Positive(1.0)}, X)
    with pytest.raises(ValueError, match=r"strictly inside its constraint \(0.0, inf\)"):
        pos.profile("var", [-1.0, 1.0])
    with pytest.raises(ValueError, match="level=1.5 must be strictly between 0 and 1"):
        pos.conf_int(1.5, method="profile")
    with pytest.raises(ValueError, match="method='bogus'"):
        pos.conf_int(method="bogus")


def test_profile_interval_in_float32_no_false_jump():
    """Issue 16: the profile root-finder's tolerances follow the dtype and the size of the
    log-likelihood. In float32 (a process without x64) the Normal mean's profile interval
    matches its closed form xbar -+ s sqrt(exp(crit/n) - 1) to float32 precision, with
    no 'jumps across the cut-off' false alarm (before: a warning and a slow search)."""
    script = textwrap.dedent(
        """
        import json, warnings, jax, jax.numpy as jnp, numpy as np
        import mlejax as mj
        x = np.random.default_rng(0).normal(5.0, 2.0, 500).astype(np.float32)
        def ll(p, x):
            return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            r = mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
            ci = r.conf_int(method="profile")["mu"]
        print(json.dumps({"dtype": str(r.loglik.dtype), "ci": [float(v) for v in ci],
                          "warn": [str(a.message) for a in w if "profile" in str(a.message)]}))
        """
    )
    env = dict(os.environ, JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    x = np.random.default_rng(0).normal(5.0, 2.0, 500).astype(np.float32).astype(np.float64)
    half = x.std() * np.sqrt(np.expm1(chi2.ppf(0.95, 1) / x.size))
    assert got["dtype"] == "float32" and got["warn"] == [], got
    np.testing.assert_allclose(got["ci"], [x.mean() - half, x.mean() + half], rtol=2e-5)
