"""Item 1 of issue 11 / FAULTS row 32: whatever treats the data as observations
(OPG, sandwich, cluster, bootstrap resampling, a guessed nobs in BIC) first checks,
at the estimate, that the log-likelihood is the sum of its per-observation terms on
the leaves taken as observations, and refuses otherwise. Oracles: closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import mlejax as mj

RNG = np.random.default_rng(11)
X50 = RNG.normal(5.0, 2.0, size=50)
INIT = {"mu": 0.0, "sigma": mj.Positive(1.0)}


def xab_ll(p, d):
    """The Normal log-likelihood of d["x"]; d["a"], d["b"] (length 3) are constants
    (a @ b / 3 = 1) shared by every observation, so the guessed observation axis
    (length 3) is wrong."""
    return jnp.sum(stats.norm.logpdf(d["x"], p["mu"], p["sigma"] * (d["a"] @ d["b"]) / 3.0))


XAB = {"x": X50, "a": np.ones(3), "b": np.arange(3.0)}
REFUSED = r"not the sum of its per-observation terms.*data\['a'\], data\['b'\].*guessed.*obs="


def test_guessed_axis_is_checked_before_sandwich_bootstrap_and_bic():
    res = mj.fit(xab_ll, INIT, XAB)
    assert res.nobs == 3  # the guess; it must not be used unchecked
    with pytest.raises(ValueError, match=REFUSED):
        mj.fit(xab_ll, INIT, XAB, cov="sandwich")
    with pytest.raises(ValueError, match=REFUSED):
        res.with_cov("opg")
    with pytest.raises(ValueError, match=REFUSED):
        mj.bootstrap(res, jax.random.key(0), n_boot=20)
    with pytest.raises(ValueError, match="BIC treats the data as independent observations"):
        _ = res.bic
    assert "n/a" in res.summary() and res.to_dict()["bic"] is None


def test_obs_names_the_observation_leaves():
    res = mj.fit(xab_ll, INIT, XAB, obs="x", cov="sandwich")
    assert res.nobs == 50
    # closed form: the HC0 sandwich SE of a Normal mean is sqrt(mean((x - xbar)^2) / n)
    se = np.sqrt(np.mean((X50 - X50.mean()) ** 2) / 50)
    np.testing.assert_allclose(res.stderr["mu"], se, rtol=1e-8)
    loglik = 50 * (-0.5 * np.log(2 * np.pi * X50.var()) - 0.5)
    np.testing.assert_allclose(res.bic, 2 * np.log(50) - 2 * loglik, rtol=1e-10)
    with pytest.raises(ValueError, match=r"obs=\['x', 'nope'\]: 'nope' names no data leaf"):
        mj.fit(xab_ll, INIT, XAB, obs=["x", "nope"])
    with pytest.raises(ValueError, match="must share a leading axis"):
        mj.fit(xab_ll, INIT, XAB, obs=["x", "a"])


def test_transposed_design_with_opg_is_refused():
    n, p = 60, 3
    x = RNG.normal(size=(n, p))
    y = x @ np.array([1.0, -1.0, 0.5]) + RNG.normal(size=n)

    def ll(q, d):
        y, xt = d
        return jnp.sum(stats.norm.logpdf(y, xt.T @ q["b"], q["s"]))

    init = {"b": jnp.zeros(p), "s": mj.Positive(1.0)}
    with pytest.raises(ValueError, match=r"data\[0\].*must be \(n, p\), not transposed"):
        mj.fit(ll, init, (y, x.T), cov="opg")
    ok = mj.fit(lambda q, d: ll(q, (d[0], d[1].T)), init, (y, x), cov="opg")
    assert np.all(np.isfinite(ok.stderr["b"]))


def ar1_ll(p, z):
    return jnp.sum(stats.norm.logpdf(z[1:], p["c"] + p["phi"] * z[:-1], p["s"]))


AR_INIT = {"c": 0.0, "phi": 0.0, "s": mj.Positive(1.0)}


def _ar1(n=120):
    z = np.zeros(n)
    e = RNG.normal(size=n)
    for t in range(1, n):
        z[t] = 0.5 * z[t - 1] + e[t]
    return z


def test_ar1_over_the_whole_series_is_refused_not_numbers():
    z = _ar1()
    with pytest.raises(ValueError, match=r"time series.*cov='observed'"):
        mj.fit(ar1_ll, AR_INIT, z, cov="sandwich")
    res = mj.fit(ar1_ll, AR_INIT, z)  # observed information is fine for any likelihood
    assert res.converged and np.all(np.isfinite(np.asarray(res.cov)))
    with pytest.raises(ValueError, match="not the sum of its per-observation terms"):
        res.with_cov("opg")
    # with nobs= given, BIC uses it (the user's statement), with the conditional loglik
    res_n = mj.fit(ar1_ll, AR_INIT, z, nobs=119)
    np.testing.assert_allclose(res_n.bic, 3 * np.log(119) - 2 * float(res_n.loglik), rtol=1e-12)


def test_batch_and_vmap_never_return_the_numbers():
    data = np.stack([_ar1(), _ar1()])
    with pytest.raises(ValueError, match=r"cov='opg' \(fit 0 of the batch\)"):
        mj.fit_batch(ar1_ll, AR_INIT, data, cov="opg")
    se = jax.vmap(lambda z: mj.fit(ar1_ll, AR_INIT, z, cov="sandwich").stderr["phi"])(data)
    assert np.all(np.isnan(np.asarray(se)))


def test_additive_likelihood_passes_and_cluster_still_works():
    res = mj.fit(xab_ll, INIT, XAB, obs="x")
    groups = np.arange(50) % 5
    out = res.with_cov("cluster", clusters=groups)
    assert np.all(np.isfinite(np.asarray(out.cov)))
    boot = mj.bootstrap(res, jax.random.key(1), n_boot=200)
    # bootstrap SE of a mean vs the closed form sqrt(var/n), Monte-Carlo error ~ 1/sqrt(2*200)
    np.testing.assert_allclose(boot.stderr["mu"], X50.std() / np.sqrt(50), rtol=0.2)
