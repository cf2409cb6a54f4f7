"""MAP estimation (fit(..., log_prior=...)) and mj.priors, against closed-form posterior
modes, ridge regression and scikit-learn's penalised logistic regression."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import mlejax as mj
from mlejax import dist as D

rng = np.random.default_rng(7)


def gaussian_loglik(p, data):  # known sigma = 1.5, module level: compiled once
    y, x = data
    return jnp.sum(-0.5 * ((y - x @ p["beta"]) / 1.5) ** 2 - jnp.log(1.5 * jnp.sqrt(2 * jnp.pi)))


def test_gaussian_prior_is_ridge_regression():
    n, k, sigma, tau = 50, 4, 1.5, 0.7
    x = rng.normal(size=(n, k))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + sigma * rng.normal(size=n)
    prior = mj.priors.normal(tau, on="beta")
    res = mj.fit(gaussian_loglik, {"beta": np.zeros(k)}, (y, x), log_prior=prior)
    ridge = np.linalg.solve(x.T @ x + (sigma / tau) ** 2 * np.eye(k), x.T @ y)
    np.testing.assert_allclose(res.params["beta"], ridge, rtol=1e-10)
    # The Laplace approximation is exact here: the posterior covariance.
    post_cov = np.linalg.inv(x.T @ x / sigma**2 + np.eye(k) / tau**2)
    np.testing.assert_allclose(res.cov, post_cov, rtol=1e-10)
    # loglik is the data log-likelihood alone, at the MAP.
    want = np.sum(st.norm.logpdf(y, x @ ridge, sigma))
    np.testing.assert_allclose(res.loglik, want, rtol=1e-12)
    assert mj.priors.normal(tau, on="beta") is prior  # same arguments, same object: no recompile


def test_laplace_prior_is_soft_thresholding_on_orthonormal_design():
    n, k, sigma, s = 40, 3, 1.5, 2.0
    q, _ = np.linalg.qr(rng.normal(size=(n, k)))  # X'X = I
    y = q @ np.array([3.0, -2.0, 4.0]) + sigma * rng.normal(size=n)
    res = mj.fit(gaussian_loglik, {"beta": np.zeros(k)}, (y, q), log_prior=mj.priors.laplace(s, on="beta"))
    ols = q.T @ y
    lasso = np.sign(ols) * np.maximum(np.abs(ols) - sigma**2 / s, 0)
    assert np.all(np.abs(lasso) > 0)  # away from the kink
    np.testing.assert_allclose(res.params["beta"], lasso, rtol=1e-9)


def test_beta_prior_on_bernoulli_gives_the_posterior_mode():
    x = rng.binomial(1, 0.3, 60)
    a, b = 3.0, 5.0
    res = mj.fit_dist(D.Bernoulli(), x, log_prior=mj.priors.beta(a, b))
    np.testing.assert_allclose(res.params["p"], (x.sum() + a - 1) / (len(x) + a + b - 2), rtol=1e-10)
    np.testing.assert_allclose(res.loglik, np.sum(st.bernoulli.logpmf(x, res.params["p"])), rtol=1e-12)


def test_gamma_prior_on_poisson_gives_the_posterior_mode():
    x = rng.poisson(4.0, 30)
    shape, rate = 2.0, 0.5
    res = mj.fit_dist(D.Poisson(), x, log_prior=mj.priors.gamma(shape, rate, on="rate"))
    np.testing.assert_allclose(res.params["rate"], (x.sum() + shape - 1) / (len(x) + rate), rtol=1e-10)


def test_ridge_logistic_regression_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    n = 200
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ [0.3, 1.0, -1.0, 0.5])))).astype(float)
    c = 0.5  # sklearn minimises ||w||^2 / 2 + C * logloss: a N(0, C) prior
    sk = LogisticRegression(C=c, fit_intercept=False, tol=1e-12, max_iter=10_000).fit(x, y)
    res = mj.glm(y, x, "logit", log_prior=mj.priors.normal(np.sqrt(c), on="beta"))
    np.testing.assert_allclose(res.params["beta"], sk.coef_[0], rtol=1e-6)


def test_prior_makes_separated_logit_estimable():
    x = np.arange(10.0)
    X = np.column_stack([np.ones(10), x - 4.5])
    y = (x > 4.5).astype(float)
    res = mj.glm(y, X, "logit", log_prior=mj.priors.normal(3.0, on="beta"))
    assert bool(res.converged)
    assert res.extras == {} or res.extras.get("separation") is None
    assert np.all(np.isfinite(np.asarray(res.stderr["beta"])))


def test_flat_elements_and_bad_leaf():
    prior = mj.priors.normal(np.array([np.inf, 1.0]), on="beta")
    np.testing.assert_allclose(prior({"beta": jnp.array([100.0, 0.0])}), st.norm.logpdf(0.0), rtol=1e-12)
    with pytest.raises(KeyError, match="no leaf 'gamma'"):
        mj.priors.normal(1.0, on="gamma")({"beta": jnp.zeros(2)})
