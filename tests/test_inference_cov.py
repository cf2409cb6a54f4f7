"""Covariance types against statsmodels on the same data (oracle: statsmodels)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import mlejax as mj

N = 200
RTOL = 1e-6


def _design(seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(N), rng.normal(size=N), rng.uniform(-1, 1, size=N)])
    return rng, x


def logit_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def poisson_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.exp(eta) - jax.scipy.special.gammaln(d["y"] + 1.0))


def _logit():
    rng, x = _design(0)
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-x @ np.array([0.3, 0.8, -0.5])))).astype(float)
    return logit_ll, sm.Logit(y, x), {"X": x, "y": y}


def _poisson():
    rng, x = _design(1)
    y = rng.poisson(np.exp(x @ np.array([0.5, 0.3, -0.4]))).astype(float)
    return poisson_ll, sm.Poisson(y, x), {"X": x, "y": y}


MODELS = {"logit": _logit, "poisson": _poisson}
GROUPS = np.arange(N) % 13


def _statsmodels_cov(model, cov):
    kw = dict(disp=0, method="newton", maxiter=100, tol=1e-14)
    if cov == "observed":
        return model.fit(**kw).cov_params()
    if cov == "opg":  # statsmodels' bsejac: inverse outer product of its analytic score_obs
        s = model.score_obs(model.fit(**kw).params)
        return np.linalg.inv(s.T @ s)
    if cov == "sandwich":
        return model.fit(cov_type="HC0", **kw).cov_params()
    return model.fit(cov_type="cluster", cov_kwds={"groups": GROUPS}, **kw).cov_params()


@pytest.mark.parametrize("cov", ["observed", "opg", "sandwich", "cluster"])
def test_fit_cov_types_match_statsmodels_logit(cov):
    ll, model, data = _logit()
    kw = {"clusters": GROUPS} if cov == "cluster" else {}
    res = mj.fit(ll, {"beta": jnp.zeros(3)}, data, cov=cov, **kw)
    expected = _statsmodels_cov(model, cov)
    np.testing.assert_allclose(np.asarray(res.cov), expected, rtol=RTOL)
    np.testing.assert_allclose(np.asarray(res.stderr["beta"]), np.sqrt(np.diag(expected)), rtol=RTOL)
    assert res.cov_type == cov


@pytest.mark.parametrize("name", list(MODELS))
def test_with_cov_types_match_statsmodels(name):
    """The same covariances attached after the fact to one observed-information fit."""
    ll, model, data = MODELS[name]()
    res = mj.fit(ll, {"beta": jnp.zeros(3)}, data)
    for cov in ("observed", "opg", "sandwich", "cluster"):
        kw = {"clusters": GROUPS} if cov == "cluster" else {}
        again = res.with_cov(cov, **kw)
        expected = _statsmodels_cov(model, cov)
        np.testing.assert_allclose(np.asarray(again.cov), expected, rtol=RTOL, err_msg=cov)
        np.testing.assert_allclose(
            np.asarray(again.stderr["beta"]), np.sqrt(np.diag(expected)), rtol=RTOL, err_msg=cov
        )
        assert again.cov_type == cov


def test_expected_information_matches_statsmodels_glm_probit():
    """Probit is not a canonical link, so observed != expected information; statsmodels'
    GLM fitted by IRLS reports the inverse expected information."""
    rng, x = _design(2)
    y = (rng.random(N) < jax.scipy.stats.norm.cdf(x @ np.array([0.2, 0.7, -0.6]))).astype(float)
    data = {"X": x, "y": y}

    def ll(p, d):
        eta = d["X"] @ p["beta"]
        return jnp.sum(
            d["y"] * jax.scipy.stats.norm.logcdf(eta) + (1 - d["y"]) * jax.scipy.stats.norm.logcdf(-eta)
        )

    def fisher(p, d):
        eta = d["X"] @ p["beta"]
        cdf = jax.scipy.stats.norm.cdf(eta)
        w = jax.scipy.stats.norm.pdf(eta) ** 2 / (cdf * (1 - cdf))
        return (d["X"] * w[:, None]).T @ d["X"]

    res = mj.fit(ll, {"beta": jnp.zeros(3)}, data)
    exp = res.with_cov("expected", expected_information=fisher)
    glm = sm.GLM(y, x, family=sm.families.Binomial(sm.families.links.Probit()))
    oracle = glm.fit(method="IRLS", tol=1e-14, maxiter=200).cov_params()
    np.testing.assert_allclose(np.asarray(exp.cov), oracle, rtol=RTOL)
    assert exp.cov_type == "expected"
    assert "expected" in exp.summary()
    # and it differs from the observed one (non-canonical link)
    assert not np.allclose(np.asarray(res.cov), oracle, rtol=1e-3)


def test_with_cov_bad_input():
    ll, _, data = _logit()
    res = mj.fit(ll, {"beta": jnp.zeros(3)}, data)
    with pytest.raises(ValueError, match="cov_type='bogus' is not known"):
        res.with_cov("bogus")
    with pytest.raises(TypeError, match="expected_information=fn"):
        res.with_cov("expected")
    with pytest.raises(ValueError, match=r"expected_information returned shape \(2, 2\)"):
        res.with_cov("expected", expected_information=lambda p, d: jnp.eye(2))
    with pytest.raises(ValueError, match="clusters="):
        res.with_cov("cluster")
    with pytest.raises(ValueError, match="clusters= is only used"):
        res.with_cov("sandwich", clusters=GROUPS)
