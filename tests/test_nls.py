"""curve_fit (nonlinear least squares) against NIST StRD certified values, statsmodels
OLS/WLS and scipy.optimize.curve_fit. The full 27-dataset table is
benchmarks/nist_strd.py; here a fast subset, including higher-difficulty datasets and
BoxBOD's start 1 (the classic false-success trap)."""

import importlib.util
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
import statsmodels.api as sm

import mlejax as mj

_spec = importlib.util.spec_from_file_location(
    "nist_strd", Path(__file__).resolve().parents[1] / "benchmarks" / "nist_strd.py")
nist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nist)


def test_nist_data_ship_with_the_repository():
    assert len(list(nist.DATA_DIR.glob("*.dat"))) == 27, nist.DATA_DIR


@pytest.mark.parametrize("name", ["Misra1a", "MGH09", "BoxBOD"])  # lower, higher, the trap
@pytest.mark.parametrize("start", [1, 2])
def test_nist_certified_values_and_standard_errors(name, start):
    r = nist.run(name, start)
    assert r["converged"], r["status"]
    assert r["value_digits"] >= 6, r
    assert r["se_digits"] >= 4, r


def test_plateau_start_is_reported_not_converged():
    """BoxBOD from b2 = 50: exp(-50 x) underflows to 0 at every x, so b2 has no
    gradient and no curvature (RSS 9771.5, not the certified 1168.0). Never success."""
    d = nist.load("BoxBOD")
    with pytest.warns(mj.MLEJaxWarning):
        res = mj.curve_fit(nist.MODELS["BoxBOD"], d["x"], d["y"], {"b1": 100.0, "b2": 50.0})
    assert not bool(res.converged)
    assert float(res.extras["rss"]) > 2 * d["rss"]


def _line(theta, x):  # linear in theta: least squares has the OLS answer
    return theta["a"] + theta["b"] * x + theta["c"] * x**2


def test_linear_in_parameters_matches_ols_and_wls():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 3, 30)
    y = 1 + 2 * x - 0.5 * x**2 + rng.normal(0, 0.3, 30)
    X = np.column_stack([np.ones_like(x), x, x**2])
    s = sm.OLS(y, X).fit()
    res = mj.curve_fit(_line, x, y, {"a": 0.0, "b": 0.0, "c": 0.0})
    got = lambda t: np.array([t["a"], t["b"], t["c"]])  # noqa: E731
    np.testing.assert_allclose(got(res.params), s.params, rtol=1e-9)
    np.testing.assert_allclose(got(res.extras["stderr_gn"]), s.bse, rtol=1e-9)  # s^2 = RSS/(n-p)
    np.testing.assert_allclose(got(res.stderr), s.bse * np.sqrt(27 / 30), rtol=1e-7)  # sigma^2 = RSS/n
    np.testing.assert_allclose(res.loglik, s.llf, rtol=1e-12)
    np.testing.assert_allclose(res.extras["rss"], s.ssr, rtol=1e-10)
    w = 1.0 / (0.5 + x)  # precision weights: statsmodels WLS
    sw = sm.WLS(y, X, weights=w).fit()
    rw = mj.curve_fit(_line, x, y, {"a": 0.0, "b": 0.0, "c": 0.0}, weights=w)
    np.testing.assert_allclose(got(rw.params), sw.params, rtol=1e-9)
    np.testing.assert_allclose(got(rw.extras["stderr_gn"]), sw.bse, rtol=1e-9)
    np.testing.assert_allclose(rw.loglik, sw.llf, rtol=1e-12)


def test_gauss_newton_covariance_matches_scipy_curve_fit():
    d = nist.load("Misra1a")
    x, y = d["x"], d["y"]
    f = lambda x, b1, b2: b1 * (1 - np.exp(-b2 * x))  # noqa: E731
    jac = lambda x, b1, b2: np.column_stack([1 - np.exp(-b2 * x), b1 * x * np.exp(-b2 * x)])  # noqa: E731
    popt, pcov = so.curve_fit(f, x, y, p0=[500, 1e-4], jac=jac, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    res = mj.curve_fit(nist.MODELS["Misra1a"], x, y, d["starts"][0])
    np.testing.assert_allclose([res.params["b1"], res.params["b2"]], popt, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.extras["cov_gn"]), pcov, rtol=1e-6)


def test_bad_input_refused():
    f = nist.MODELS["Misra1a"]
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        mj.curve_fit(f, x, np.array([1.0, np.nan, 2, 3, 4]), {"b1": 1.0, "b2": 1.0})
    with pytest.raises(ValueError, match="f\\(theta, x\\) returns shape"):
        mj.curve_fit(lambda t, x: jnp.sum(x) * t["b"], x, x, {"b": 1.0})
    with pytest.raises(ValueError, match="weights has negative"):
        mj.curve_fit(f, x, x, {"b1": 1.0, "b2": 1.0}, weights=-np.ones(5))
    with pytest.raises(TypeError, match="f must be a function"):
        mj.curve_fit("model", x, x, {"b1": 1.0})


def test_noise_free_data_are_reported_as_an_exact_fit():
    """Simulated y without noise: the least-squares fit is exact, sigma's MLE is 0 and the
    Gaussian log-likelihood unbounded. The estimates are the generating values (the
    oracle), the status UNBOUNDED with the cause named, not a "noisy surface" precision
    loss; the Gauss-Newton SEs s^2 (J'J)^-1 are 0, as scipy's curve_fit gives."""
    x = np.linspace(0.5, 5, 10)
    y = 2.0 * (1 - np.exp(-0.7 * x))
    with pytest.warns(mj.ConvergenceWarning, match="f fits every response exactly") as seen:
        res = mj.curve_fit(nist.MODELS["Misra1a"], x, y, {"b1": 1.0, "b2": 0.5})
    assert len(seen) == 1 and "noisy" not in str(seen[0].message)
    assert res.status == mj.Status.UNBOUNDED and not res.converged
    np.testing.assert_allclose([res.params["b1"], res.params["b2"]], [2.0, 0.7], rtol=1e-10)
    assert np.all(np.isnan([res.stderr["b1"], res.stderr["b2"]]))
    f = lambda x, b1, b2: b1 * (1 - np.exp(-b2 * x))  # noqa: E731
    _, pcov = so.curve_fit(f, x, y, p0=[1.0, 0.5])
    np.testing.assert_allclose(np.asarray(res.extras["cov_gn"]), pcov, atol=1e-20)


def test_tiny_but_real_noise_is_an_ordinary_fit():
    """The exact-fit test is scale-free: noise 1e-9 of the signal is a regular fit whose
    estimates and standard errors equal statsmodels' OLS."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 3, 30)
    y = 1e6 * (1 + 2 * x - 0.5 * x**2) + rng.normal(0, 1e-3, 30)
    X = np.column_stack([np.ones_like(x), x, x**2])
    s = sm.OLS(y, X).fit()
    res = mj.curve_fit(_line, x, y, {"a": 0.0, "b": 0.0, "c": 0.0})
    assert res.status == mj.Status.SUCCESS
    got = lambda t: np.array([t["a"], t["b"], t["c"]])  # noqa: E731
    np.testing.assert_allclose(got(res.params), s.params, rtol=1e-12)
    np.testing.assert_allclose(got(res.extras["stderr_gn"]), s.bse, rtol=1e-6)
