"""Regression models (mj.glm) against statsmodels on its shipped datasets."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

import mlejax as mj

RTOL = 1e-6


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, err_msg=what)


def _check(res, sm_params, sm_bse, sm_llf):
    assert bool(res.converged), res.message
    _close(res.params["beta"], sm_params, "params")
    _close(res.stderr["beta"], sm_bse, "stderr")
    _close(res.loglik, sm_llf, "loglik")


@pytest.fixture(scope="module")
def spector():
    d = sm.datasets.spector.load_pandas()
    return d.endog.values.astype(float), sm.add_constant(d.exog.values.astype(float))


@pytest.mark.parametrize("model, cls", [("logit", sm.Logit), ("probit", sm.Probit)])
def test_binary_models_match_statsmodels(spector, model, cls):
    y, x = spector
    s = cls(y, x).fit(disp=0, method="newton", tol=1e-12)
    res = mj.glm(y, x, model)
    _check(res, s.params, s.bse, s.llf)
    assert res.extras["separation"] is None


def test_poisson_with_offset_matches_statsmodels():
    d = sm.datasets.cpunish.load_pandas()
    y = d.endog.values.astype(float)
    x = sm.add_constant(d.exog.values.astype(float), prepend=False)
    offset = 0.1 * np.log(x[:, 0])  # any fixed offset
    s = sm.GLM(y, x, family=sm.families.Poisson(), offset=offset).fit(tol=1e-14)
    _check(mj.glm(y, x, "poisson", offset=offset), s.params, s.bse, s.llf)


def test_poisson_frequency_weights_match_statsmodels():
    d = sm.datasets.cpunish.load_pandas()
    y = d.endog.values.astype(float)
    x = sm.add_constant(d.exog.values.astype(float), prepend=False)
    w = np.arange(len(y)) % 3 + 1.0
    s = sm.GLM(y, x, family=sm.families.Poisson(), freq_weights=w).fit(tol=1e-14)
    _check(mj.glm(y, x, "poisson", weights=w), s.params, s.bse, s.llf)


def test_negative_binomial_matches_statsmodels():
    d = sm.datasets.randhie.load_pandas()
    y = d.endog.values.astype(float)[:3000]
    x = sm.add_constant(d.exog.values.astype(float), prepend=False)[:3000]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sm.NegativeBinomial(y, x, loglike_method="nb2").fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    res = mj.glm(y, x, "negbin")
    _check(res, s.params[:-1], s.bse[:-1], s.llf)
    _close(res.params["alpha"], s.params[-1], "alpha")
    _close(res.stderr["alpha"], s.bse[-1], "alpha stderr")


def test_gamma_matches_statsmodels():
    """statsmodels' GLM estimates the dispersion by Pearson chi2; given the MLE one
    (1/shape), its standard errors and log-likelihood are the full MLE's (the canonical
    inverse link makes beta and the shape orthogonal)."""
    d = sm.datasets.scotland.load_pandas()
    y, x = d.endog.values, sm.add_constant(d.exog.values, prepend=False)
    res = mj.glm(y, x, "gamma")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sm.GLM(y, x, family=sm.families.Gamma()).fit(scale=1 / float(res.params["shape"]), tol=1e-14)
    _check(res, s.params, s.bse, s.llf)


def test_linear_model_matches_ols_on_longley():
    d = sm.datasets.longley.load_pandas()
    y, x = d.endog.values, sm.add_constant(d.exog.values)
    s = sm.OLS(y, x).fit()
    n, p = x.shape
    with pytest.warns(mj.HessianWarning, match="ill-conditioned"):  # Longley's design is
        res = mj.glm(y, x, "linear")
    _check(res, s.params, s.bse * np.sqrt((n - p) / n), s.llf)  # MLE SEs use RSS/n
    _close(res.extras["stderr_unbiased"], s.bse, "OLS stderr")
    _close(res.extras["sigma2_unbiased"], s.scale, "s^2 = RSS/(n-p)")
    _close(res.extras["sigma2_mle"], s.ssr / n, "RSS/n")
    _close(res.params["sigma"] ** 2, s.ssr / n, "sigma^2")


def test_normal_with_log_link_reports_the_variance_of_its_own_mean():
    """sigma2_mle / sigma2_unbiased of a Normal GLM with a log link are the residual
    variance about exp(X beta), as statsmodels' Gaussian GLM's scale, not about X beta."""
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = np.exp(x @ np.array([1.0, 0.3])) + rng.normal(0, 0.5, 200)
    res = mj.glm(y, x, "linear", link="log")
    s = sm.GLM(y, x, family=sm.families.Gaussian(sm.families.links.Log())).fit(tol=1e-12)
    _close(res.params["beta"], s.params, "beta")
    _close(res.extras["sigma2_unbiased"], s.scale, "s^2 = RSS/(n-p)")
    _close(res.extras["sigma2_mle"], float(res.params["sigma"]) ** 2, "RSS/n = sigma_hat^2")


def test_linear_model_with_frequency_weights_matches_wls_on_repeated_rows():
    d = sm.datasets.longley.load_pandas()
    y, x = d.endog.values, sm.add_constant(d.exog.values)
    w = np.arange(len(y)) % 2 + 1
    s = sm.OLS(np.repeat(y, w), np.repeat(x, w, axis=0)).fit()
    with pytest.warns(mj.HessianWarning, match="ill-conditioned"):
        res = mj.glm(y, x, "linear", weights=w)
    _close(res.params["beta"], s.params, "params")
    _close(res.extras["stderr_unbiased"], s.bse, "OLS stderr")
    _close(res.loglik, s.llf, "loglik")


# -- FAULTS row 21: separation ---------------------------------------------------------------
@pytest.mark.parametrize("model", ["logit", "probit"])
@pytest.mark.parametrize("kind", ["perfect", "quasi-complete"])
def test_separation_detected_and_reported(model, kind):
    x = np.arange(12.0)
    y = (x > 5.5).astype(float)
    if kind == "quasi-complete":  # overlapping outcomes at x = 5 (same shapes: one compile)
        x[6] = 5.0
    X = np.column_stack([np.ones_like(x), x])
    with pytest.warns(mj.PerfectSeparationWarning, match=f"{kind} separation"):
        res = mj.glm(y, X, model)
    assert res.extras["separation"] == kind
    assert not bool(res.converged)
    assert int(res.status) == mj.Status.DIVERGING  # FAULTS row 34: an MLE at infinity
    assert np.all(np.isnan(np.asarray(res.stderr["beta"])))
    assert "MLE does not exist" in res.message


# -- FAULTS row 22 and bad input -----------------------------------------------------------
@pytest.mark.parametrize(
    "model, y, match",
    [
        ("logit", [0, 1, 2, 1], "y is outside the support of the logit model"),
        ("probit", [0, 1, -0.5, 1], "unit interval"),
        ("poisson", [0, 1, -1, 3], "non-negative counts"),
        ("negbin", [0, 1, -1, 3], "non-negative counts"),
        ("gamma", [1.0, 0.0, 2.0, 3.0], r"positive numbers \(> 0\)"),
        ("linear", [1.0, np.inf, 2.0, 3.0], "y contains 1 NaN/inf"),
    ],
)
def test_response_outside_support_refused(model, y, match):
    X = np.column_stack([np.ones(4), np.arange(4.0)])
    with pytest.raises(ValueError, match=match):
        mj.glm(np.asarray(y, float), X, model)


def test_bad_arguments_refused():
    y, X = np.array([0.0, 1.0, 1.0]), np.ones((3, 1))
    with pytest.raises(ValueError, match="X has shape"):
        mj.glm(y, np.ones((4, 2)), "logit")
    with pytest.raises(ValueError, match="offset has shape"):
        mj.glm(y, X, "logit", offset=np.zeros(2))
    with pytest.raises(ValueError, match="model='tobit' is not known"):
        mj.glm(y, X, "tobit")
    with pytest.raises(ValueError, match="link='cloglog' is not known"):
        mj.glm(y, X, "poisson", link="cloglog")
    with pytest.raises(ValueError, match="weights has negative"):
        mj.glm(y, X, "logit", weights=[1, -1, 1])


def test_robust_covariance_matches_statsmodels_hc0(spector):
    y, x = spector
    s = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12, cov_type="HC0")
    res = mj.glm(y, x, "logit", cov="sandwich")
    _close(res.stderr["beta"], s.bse, "HC0 stderr")
