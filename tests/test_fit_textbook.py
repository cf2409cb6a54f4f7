"""The textbook closed forms: MLEs and standard errors from the analytic Fisher information."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import mlejax as mj

RTOL = 1e-10


def bernoulli_ll(p, x):
    return jnp.sum(x * jnp.log(p["p"]) + (1 - x) * jnp.log1p(-p["p"]))


def test_coin_three_heads_in_five():
    res = mj.fit(bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, jnp.array([1, 1, 0, 1, 0]))
    assert res.converged
    np.testing.assert_allclose(res.params["p"], 0.6, rtol=RTOL)
    # inverse Fisher information: p(1-p)/n
    np.testing.assert_allclose(res.stderr["p"], np.sqrt(0.6 * 0.4 / 5), rtol=1e-8)
    np.testing.assert_allclose(res.loglik, 3 * np.log(0.6) + 2 * np.log(0.4), rtol=RTOL)


def test_bernoulli_sample():
    x = (np.random.default_rng(0).random(400) < 0.3).astype(float)
    res = mj.fit(bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, x)
    phat = x.mean()
    np.testing.assert_allclose(res.params["p"], phat, rtol=RTOL)
    np.testing.assert_allclose(res.stderr["p"], np.sqrt(phat * (1 - phat) / x.size), rtol=1e-8)


def normal_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def test_normal_biased_variance():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=250)
    n = x.size
    res = mj.fit(normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
    mu, s2_mle = x.mean(), x.var(ddof=0)  # the MLE divides by n, not n - 1
    np.testing.assert_allclose(res.params["mu"], mu, rtol=RTOL)
    np.testing.assert_allclose(res.params["sigma"] ** 2, s2_mle, rtol=RTOL)
    assert abs(res.params["sigma"] ** 2 - x.var(ddof=1)) > 1e-3  # not the n-1 estimator
    # I(mu, sigma) = n diag(1/sigma^2, 2/sigma^2)
    sigma = np.sqrt(s2_mle)
    np.testing.assert_allclose(res.stderr["mu"], sigma / np.sqrt(n), rtol=1e-8)
    np.testing.assert_allclose(res.stderr["sigma"], sigma / np.sqrt(2 * n), rtol=1e-8)
    np.testing.assert_allclose(
        res.information, n * np.diag([1 / s2_mle, 2 / s2_mle]), rtol=1e-8, atol=1e-8
    )
    # delta method: se(sigma^2) = sqrt(2/n) sigma^2
    d = res.delta(lambda p: p["sigma"] ** 2)
    np.testing.assert_allclose(d.estimate, s2_mle, rtol=RTOL)
    np.testing.assert_allclose(d.stderr, np.sqrt(2.0 / n) * s2_mle, rtol=1e-8)


def test_normal_variance_parametrisation_is_invariant():
    """MLE invariance: fitting the variance directly gives sigma_hat^2, and the delta
    method SE of sigma^2 from a sigma fit equals the SE of a direct variance fit."""
    x = np.random.default_rng(2).normal(-1.0, 0.5, size=120)

    def ll_var(p, x):
        return jnp.sum(stats.norm.logpdf(x, p["mu"], jnp.sqrt(p["var"])))

    by_var = mj.fit(ll_var, {"mu": 0.0, "var": mj.Positive(1.0)}, x)
    by_sd = mj.fit(normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
    np.testing.assert_allclose(by_var.params["var"], x.var(), rtol=RTOL)
    np.testing.assert_allclose(by_var.stderr["var"], by_sd.delta(lambda p: p["sigma"] ** 2).stderr,
                               rtol=1e-8)


def poisson_ll(p, k):
    return jnp.sum(stats.poisson.logpmf(k, p["rate"]))


def test_poisson_with_integer_counts():
    k = np.random.default_rng(3).poisson(4.2, size=300)  # integer data stay integer
    res = mj.fit(poisson_ll, {"rate": mj.Positive(1)}, k)  # integer start is cast to float
    lam = k.mean()
    np.testing.assert_allclose(res.params["rate"], lam, rtol=RTOL)
    np.testing.assert_allclose(res.stderr["rate"], np.sqrt(lam / k.size), rtol=1e-8)


def test_exponential_rate_and_mean():
    x = np.random.default_rng(4).exponential(2.5, size=200)
    n = x.size

    def ll(p, x):
        return jnp.sum(jnp.log(p["rate"]) - p["rate"] * x)

    res = mj.fit(ll, {"rate": mj.Positive(1.0)}, x)
    rate = 1 / x.mean()
    np.testing.assert_allclose(res.params["rate"], rate, rtol=RTOL)
    np.testing.assert_allclose(res.stderr["rate"], rate / np.sqrt(n), rtol=1e-8)
    # invariance: the MLE of the mean 1/rate is the sample mean, se = mean/sqrt(n)
    d = res.delta(lambda p: 1.0 / p["rate"])
    np.testing.assert_allclose(d.estimate, x.mean(), rtol=RTOL)
    np.testing.assert_allclose(d.stderr, x.mean() / np.sqrt(n), rtol=1e-8)


def test_linear_regression_closed_form():
    rng = np.random.default_rng(5)
    n = 150
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.7, size=n)

    def ll(p, d):
        return jnp.sum(stats.norm.logpdf(d["y"], d["X"] @ p["beta"], p["sigma"]))

    res = mj.fit(ll, {"beta": jnp.zeros(3), "sigma": mj.Positive(1.0)}, {"X": X, "y": y})
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    rss = np.sum((y - X @ beta) ** 2)
    np.testing.assert_allclose(res.params["beta"], beta, rtol=1e-10)
    np.testing.assert_allclose(res.params["sigma"] ** 2, rss / n, rtol=1e-10)  # MLE: RSS/n
    # observed information for beta: X'X / sigma^2
    cov_beta = rss / n * np.linalg.inv(X.T @ X)
    np.testing.assert_allclose(res.stderr["beta"], np.sqrt(np.diag(cov_beta)), rtol=1e-8)
    assert res.names == ("beta[0]", "beta[1]", "beta[2]", "sigma")


def test_map_is_mle_plus_log_prior():
    """Normal mean with known sigma and a N(m0, s0^2) prior: the MAP is the
    conjugate posterior mean, and the Laplace SE the posterior standard deviation."""
    x = np.random.default_rng(6).normal(1.0, 2.0, size=40)
    sigma, m0, s0 = 2.0, -1.0, 0.3

    def ll(mu, x):
        return jnp.sum(stats.norm.logpdf(x, mu, sigma))

    res = mj.fit(ll, 0.0, x, log_prior=lambda mu: stats.norm.logpdf(mu, m0, s0))
    prec = x.size / sigma**2 + 1 / s0**2
    post_mean = (x.sum() / sigma**2 + m0 / s0**2) / prec
    np.testing.assert_allclose(res.params, post_mean, rtol=1e-10)
    np.testing.assert_allclose(res.stderr, np.sqrt(1 / prec), rtol=1e-8)
    np.testing.assert_allclose(res.loglik, np.sum(
        -0.5 * np.log(2 * np.pi * sigma**2) - (x - post_mean) ** 2 / (2 * sigma**2)), rtol=1e-10)


def test_logsumexp_mixture_likelihood_is_stable():
    """A log-likelihood written with logsumexp stays finite where naive sums underflow."""
    x = np.array([-40.0, -39.0, 40.0, 41.0, 39.5])

    def ll(p, x):
        comp = jnp.stack([stats.norm.logpdf(x, -p["m"], 1.0), stats.norm.logpdf(x, p["m"], 1.0)])
        return jnp.sum(jax.nn.logsumexp(comp, axis=0) + jnp.log(0.5))

    res = mj.fit(ll, {"m": 30.0}, x)
    assert res.converged
    # far-apart components: the MLE is the mean of |x|
    np.testing.assert_allclose(res.params["m"], np.mean(np.abs(x)), rtol=1e-10)


@pytest.mark.parametrize("n", [10, 1000])
def test_bernoulli_cramer_rao_is_the_se(n):
    x = np.zeros(n)
    x[: n // 4] = 1
    res = mj.fit(bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, x)
    p = x.mean()
    np.testing.assert_allclose(res.information, [[n / (p * (1 - p))]], rtol=1e-8)
