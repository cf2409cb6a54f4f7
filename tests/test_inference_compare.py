"""Model comparison and functions of parameters. Oracles: statsmodels (llf, LR test,
Wald test, AIC/BIC, AICc from statsmodels.tools.eval_measures) and closed forms."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tools.eval_measures import aicc as sm_aicc

import mlejax as mj

RTOL = 1e-6
N = 150


def logit_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def poisson_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.exp(eta) - jax.scipy.special.gammaln(d["y"] + 1.0))


def _data(kind):
    rng = np.random.default_rng(7 if kind == "logit" else 8)
    x = np.column_stack([np.ones(N), rng.normal(size=N), rng.normal(size=N)])
    eta = x @ np.array([0.2, 0.5, 0.15])
    if kind == "logit":
        return logit_ll, sm.Logit, x, (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)
    return poisson_ll, sm.Poisson, x, rng.poisson(np.exp(eta)).astype(float)


def _sm_fit(model):
    return model.fit(disp=0, method="newton", tol=1e-14, maxiter=100)


def _null(ll):
    """The same model with beta written leaf by leaf, so slopes can be mj.Fixed."""

    def ll_null(p, d):
        return ll({"beta": jnp.stack([p["a"], p["b1"], p["b2"]])}, d)

    return ll_null


NULL = {logit_ll: _null(logit_ll), poisson_ll: _null(poisson_ll)}


@functools.cache
def _fits(kind):
    """mlejax fits of the full and the restricted (intercept-only, slopes mj.Fixed(0.0))
    models, and the statsmodels fits of both."""
    ll, Model, x, y = _data(kind)
    data = {"X": x, "y": y}
    full = mj.fit(ll, {"beta": jnp.zeros(3)}, data)
    null = mj.fit(NULL[ll], {"a": 0.0, "b1": mj.Fixed(0.0), "b2": mj.Fixed(0.0)}, data)
    return full, null, _sm_fit(Model(y, x)), _sm_fit(Model(y, x[:, :1]))


@pytest.mark.parametrize("kind", ["logit", "poisson"])
def test_lrt_and_information_criteria_match_statsmodels(kind):
    full, null, sm_full, sm_null = _fits(kind)
    assert null.nparams == 1 and null.names == ("a",)
    for ours, theirs in ((full, sm_full), (null, sm_null)):
        np.testing.assert_allclose(float(ours.loglik), theirs.llf, rtol=RTOL)
        np.testing.assert_allclose(float(ours.aic), theirs.aic, rtol=RTOL)
        np.testing.assert_allclose(float(ours.bic), theirs.bic, rtol=RTOL)
        k = theirs.df_model + 1
        np.testing.assert_allclose(float(ours.aicc), sm_aicc(theirs.llf, N, k), rtol=RTOL)
    # statsmodels' own likelihood-ratio test of the full model against intercept-only
    test = mj.lrt(full, null, nested=True)  # two loglik functions: the nesting is asserted
    assert test.df == 2
    np.testing.assert_allclose(float(test.statistic), sm_full.llr, rtol=RTOL)
    np.testing.assert_allclose(float(test.pvalue), sm_full.llr_pvalue, rtol=RTOL)
    np.testing.assert_allclose(float(null.loglik), sm_full.llnull, rtol=RTOL)


@pytest.mark.parametrize("kind", ["logit", "poisson"])
def test_wald_test_matches_statsmodels(kind):
    res, _, sm_res, _ = _fits(kind)
    r = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    q = np.array([0.3, 0.0])
    ours = res.wald_test(r, q)
    theirs = sm_res.wald_test((r, q), use_f=False, scalar=True)
    np.testing.assert_allclose(float(ours.statistic), float(theirs.statistic), rtol=RTOL)
    np.testing.assert_allclose(float(ours.pvalue), float(theirs.pvalue), rtol=RTOL)
    assert ours.df == 2
    one = mj.wald_test(res, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(float(one.statistic), float(sm_res.tvalues[2]) ** 2, rtol=RTOL)
    np.testing.assert_allclose(float(one.pvalue), float(sm_res.pvalues[2]), rtol=RTOL)


def test_compare_bad_input():
    full, null, _, _ = _fits("logit")
    with pytest.raises(ValueError, match="pass the larger model first"):
        mj.lrt(full, full)
    with pytest.raises(ValueError, match="R has 2 columns; it needs one per free parameter"):
        full.wald_test([[1.0, 0.0]])
    with pytest.raises(ValueError, match=r"q has shape \(2,\)"):
        full.wald_test([[1.0, 0.0, 0.0]], [0.0, 1.0])
    with pytest.raises(ValueError, match="different numbers of observations"):
        mj.lrt(full, dataclasses.replace(null, nobs=100))


# -- delta method against closed forms -----------------------------------------------


def test_delta_normal_variance_and_cv():
    x = np.random.default_rng(4).normal(3.0, 2.0, size=80)
    n = x.size

    def ll(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    res = mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
    s = np.sqrt(np.mean((x - x.mean()) ** 2))
    d = res.delta(lambda p: p["sigma"] ** 2)
    # Var(sigma_hat) = sigma^2 / (2n) -> se(sigma^2) = 2 sigma * sigma / sqrt(2n) = sigma^2 sqrt(2/n)
    np.testing.assert_allclose(float(d.estimate), s**2, rtol=1e-10)
    np.testing.assert_allclose(float(d.stderr), s**2 * np.sqrt(2.0 / n), rtol=1e-8)
    # coefficient of variation sigma/mu: mu and sigma are independent at the MLE
    cv = res.delta(lambda p: p["sigma"] / p["mu"])
    m = x.mean()
    se_cv = np.sqrt((s / m**2) ** 2 * s**2 / n + (1 / m) ** 2 * s**2 / (2 * n))
    np.testing.assert_allclose(float(cv.stderr), se_cv, rtol=1e-8)
    # a pytree-valued function: estimate and stderr keep its structure
    both = res.delta(lambda p: {"var": p["sigma"] ** 2, "two_mu": jnp.stack([p["mu"], 2 * p["mu"]])})
    np.testing.assert_allclose(np.asarray(both.stderr["two_mu"]), [s / np.sqrt(n), 2 * s / np.sqrt(n)], rtol=1e-8)
    assert both.cov.shape == (3, 3)


def test_delta_exponential_mean():
    x = np.random.default_rng(5).exponential(2.0, size=60)

    def ll(p, x):
        return jnp.sum(jnp.log(p["rate"]) - p["rate"] * x)

    res = mj.fit(ll, {"rate": mj.Positive(1.0)}, x)
    d = res.delta(lambda p: 1.0 / p["rate"])
    # mean = 1/rate; se(rate) = rate/sqrt(n) -> se(mean) = mean/sqrt(n)
    np.testing.assert_allclose(float(d.estimate), x.mean(), rtol=1e-10)
    np.testing.assert_allclose(float(d.stderr), x.mean() / np.sqrt(x.size), rtol=1e-8)


def test_delta_logit_predicted_probability_vs_statsmodels():
    res, _, sm_res, _ = _fits("logit")
    x0 = np.array([1.0, 0.5, -1.0])
    d = res.delta(lambda p: jax.nn.sigmoid(x0 @ p["beta"]))
    pred = sm_res.get_prediction(x0[None, :])
    np.testing.assert_allclose(float(d.estimate), pred.predicted[0], rtol=RTOL)
    np.testing.assert_allclose(float(d.stderr), pred.se[0], rtol=RTOL)


def test_conf_int_fixed_leaves_are_nan():
    _, null, _, _ = _fits("poisson")
    assert bool(null.converged)
    ci = null.conf_int()
    for leaf in ("b1", "b2"):
        assert np.isnan(float(ci[leaf][0])) and np.isnan(float(ci[leaf][1]))
        assert np.isnan(float(null.stderr[leaf]))
    assert np.isfinite(float(ci["a"][0])) and np.isfinite(float(ci["a"][1]))


def test_fixed_mask_holds_one_coefficient_for_lrt():
    """Issue 11 item 14: ``mj.Fixed(value, mask=...)`` holds one entry of ``beta``; the
    free entries' estimates and standard errors equal a hand-split model (the held
    column as an offset) and statsmodels' GLM with that offset; the held entry has a
    NaN standard error; ``mj.lrt`` against the full fit equals the hand-split LRT."""
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(150), rng.normal(size=(150, 3))])
    y = X @ np.array([1.0, 2.0, 0.3, -1.0]) + rng.normal(size=150)

    def ll(p, d):
        return jnp.sum(jax.scipy.stats.norm.logpdf(d[1], d[0] @ p["beta"], p["sigma"]))

    def ll_split(p, d):  # beta[2] = 0.5 written out by hand
        return jnp.sum(jax.scipy.stats.norm.logpdf(d[1], d[0][:, [0, 1, 3]] @ p["b"] + 0.5 * d[0][:, 2], p["sigma"]))

    full = mj.fit(ll, {"beta": jnp.zeros(4), "sigma": mj.Positive(1.0)}, (X, y))
    held = mj.fit(ll, {"beta": mj.Fixed(jnp.array([0.0, 0.0, 0.5, 0.0]), mask=[False, False, True, False]),
                       "sigma": mj.Positive(1.0)}, (X, y))
    split = mj.fit(ll_split, {"b": jnp.zeros(3), "sigma": mj.Positive(1.0)}, (X, y))
    assert held.names == ("beta[0]", "beta[1]", "beta[3]", "sigma") and bool(held.converged)
    b, se = np.asarray(held.params["beta"]), np.asarray(held.stderr["beta"])
    assert b[2] == 0.5 and np.isnan(se[2])
    np.testing.assert_allclose(b[[0, 1, 3]], np.asarray(split.params["b"]), rtol=1e-10)
    np.testing.assert_allclose(se[[0, 1, 3]], np.asarray(split.stderr["b"]), rtol=1e-8)
    glm = sm.GLM(y, X[:, [0, 1, 3]], offset=0.5 * X[:, 2]).fit()
    np.testing.assert_allclose(b[[0, 1, 3]], glm.params, rtol=1e-8)
    np.testing.assert_allclose(se[[0, 1, 3]], glm.bse * np.sqrt(glm.df_resid / glm.nobs), rtol=1e-6)
    t_mask, t_split = mj.lrt(full, held), mj.lrt(full, split, nested=True)
    assert t_mask.df == 1
    np.testing.assert_allclose(float(t_mask.statistic), float(t_split.statistic), rtol=1e-8)
    with pytest.raises(TypeError, match="mask"):
        mj.fit(ll, {"beta": mj.Fixed(jnp.zeros(4), mask=[0, 0, 1, 0]), "sigma": mj.Positive(1.0)}, (X, y))
