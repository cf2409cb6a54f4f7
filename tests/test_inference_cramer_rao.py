"""Cramér-Rao: on simulated data, fitted many times at once with jax.vmap, the average
observed information is n I(theta) and the variance of the estimates is its inverse,
within Monte-Carlo error (4 Monte-Carlo standard errors). Oracle: the closed-form
Fisher information of each family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj

R, N = 1000, 200  # replications, observations per replication
K_SE = 4.0


def bernoulli_ll(p, y):
    return jnp.sum(y * jnp.log(p["p"]) + (1 - y) * jnp.log1p(-p["p"]))


def poisson_ll(p, y):
    return jnp.sum(y * jnp.log(p["rate"]) - p["rate"] - jax.scipy.special.gammaln(y + 1.0))


def normal_ll(p, y):
    return jnp.sum(jax.scipy.stats.norm.logpdf(y, p["mu"], p["sigma"]))


def _case(name):
    rng = np.random.default_rng({"bernoulli": 11, "poisson": 12, "normal": 13}[name])
    if name == "bernoulli":
        p = 0.3
        return (bernoulli_ll, {"p": mj.Bounded(0.0, 1.0, 0.5)}, {"p": mj.Bounded(0.0, 1.0, p)},
                (rng.random((R, N)) < p).astype(float), np.array([[N / (p * (1 - p))]]))
    if name == "poisson":
        lam = 2.5
        return (poisson_ll, {"rate": mj.Positive(1.0)}, {"rate": mj.Positive(lam)},
                rng.poisson(lam, (R, N)).astype(float), np.array([[N / lam]]))
    mu, sigma = 1.0, 2.0
    return (normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, {"mu": mu, "sigma": mj.Positive(sigma)},
            rng.normal(mu, sigma, (R, N)), np.diag([N / sigma**2, 2 * N / sigma**2]))


def _flat(params, names):
    return np.column_stack([np.asarray(params[n]) for n in names])


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "normal"])
def test_cramer_rao(name):
    ll, init, truth, y, fisher = _case(name)
    fits = jax.vmap(lambda d: mj.fit(ll, init, d))(jnp.asarray(y))
    assert bool(jnp.all(fits.converged))
    # observed information at the true parameter: the fit's own information, stopped at
    # its start (maxiter=0); its expectation is exactly n I(theta)
    at_truth = jax.vmap(lambda d: mj.fit(ll, truth, d, maxiter=0))(jnp.asarray(y))
    info = np.asarray(at_truth.information)  # (R, k, k)
    mean, se = info.mean(axis=0), info.std(axis=0, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(mean - fisher) <= K_SE * se + 1e-12), (mean, fisher, se)
    # the average information at the estimates agrees too (to O(1/n) bias)
    at_mle = np.asarray(fits.information).mean(axis=0)
    np.testing.assert_allclose(np.diag(at_mle), np.diag(fisher), rtol=0.03)
    # the variance of the estimates is the inverse information
    names = list(fits.names)
    theta = _flat(fits.params, names)  # (R, k)
    centred = theta - theta.mean(axis=0)
    var = centred.var(axis=0, ddof=1)
    var_se = np.sqrt((np.mean(centred**4, axis=0) - var**2) / R)
    crlb = np.diag(np.linalg.inv(fisher))
    assert np.all(np.abs(var - crlb) <= K_SE * var_se), (var, crlb, var_se)
    # and each fit's own standard error estimates that spread
    se_fit = _flat(fits.stderr, names)
    np.testing.assert_allclose(np.mean(se_fit**2, axis=0), crlb, rtol=0.05)
