"""The remaining gaps of the fault catalogue (issue 16, part 3): each test failed before
its fix."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj


def norm_ll(p, x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))


INIT = {"mu": 0.0, "sigma": mj.Positive(1.0)}
X = np.random.default_rng(0).normal(1.0, 2.0, 60)


def test_fit_batch_refuses_a_python_list_of_datasets():
    rng = np.random.default_rng(1)
    datasets = [rng.normal(size=40) for _ in range(3)]
    with pytest.raises(TypeError, match=r"np\.stack"):
        mj.fit_batch(norm_ll, INIT, datasets)


def test_max_iter_gives_nan_standard_errors_and_raw_ones_on_request():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mj.fit(norm_ll, INIT, X, maxiter=1)
    assert res.status != mj.Status.SUCCESS
    assert np.isnan(res.stderr["mu"]) and np.isnan(res.stderr["sigma"])
    assert np.isnan(np.asarray(res.cov)).all()
    raw = res.with_cov("observed")
    # oracle: the inverse of the observed information at the reached point
    h = np.asarray(res.information)
    np.testing.assert_allclose(raw.stderr["mu"], np.sqrt(np.linalg.inv(h)[0, 0]), rtol=1e-10)
    assert np.isfinite(raw.stderr["sigma"])


def test_batch_non_success_fits_have_nan_standard_errors():
    xb = np.stack([X, X[::-1] * 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mj.fit_batch(norm_ll, INIT, xb, maxiter=1)
    bad = np.asarray(res.status) != int(mj.Status.SUCCESS)
    assert bad.any()
    assert np.isnan(np.asarray(res.stderr["mu"])[bad]).all()


def test_success_keeps_closed_form_standard_errors():
    res = mj.fit(norm_ll, INIT, X)
    assert res.status == mj.Status.SUCCESS
    sigma = X.std()
    np.testing.assert_allclose(res.stderr["mu"], sigma / np.sqrt(X.size), rtol=1e-6)


def test_float16_loglik_warns_precision():
    from mlejax._status import PrecisionWarning, warn_if_float32

    with pytest.warns(PrecisionWarning, match="float16"):
        warn_if_float32(jnp.float16, 1)
    with pytest.warns(PrecisionWarning, match="float32"):
        warn_if_float32(jnp.float32, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_float32(jnp.float64, 1)


def test_float16_loglik_of_a_fit_warns_precision():
    """End to end: a log-likelihood that returns float16 (the fit's own arrays are still
    float64, so the result's dtype alone does not show it) gets the PrecisionWarning
    naming float16, for a single fit and for a batch."""
    def ll16(p, x):
        return norm_ll(p, x).astype(jnp.float16)

    with pytest.warns(mj.PrecisionWarning, match="float16"):
        mj.fit(ll16, INIT, X)
    with pytest.warns(mj.PrecisionWarning, match="float16"):
        mj.fit_batch(ll16, INIT, np.stack([X[:20], X[20:40]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.fit(norm_ll, INIT, X)  # float64: silent


def test_lrt_warns_when_a_fit_did_not_converge():
    def ll2(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = mj.fit(ll2, INIT, X, maxiter=2)
    restricted = mj.fit(ll2, {"mu": mj.Fixed(0.0), "sigma": mj.Positive(1.0)}, X)
    assert not full.converged
    with pytest.warns(mj.ConvergenceWarning, match="full fit did not converge"):
        try:
            mj.lrt(full, restricted)
        except ValueError:
            pass


def test_lrt_is_silent_for_converged_fits():
    full = mj.fit(norm_ll, INIT, X)
    restricted = mj.fit(norm_ll, {"mu": mj.Fixed(0.0), "sigma": mj.Positive(1.0)}, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = mj.lrt(full, restricted)
    # oracle: closed-form normal MLEs
    s_full = X.var()
    s_res = np.mean(X**2)
    np.testing.assert_allclose(out.statistic, X.size * np.log(s_res / s_full), rtol=1e-6)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: mj.fit(norm_ll, INIT, X, nobs=-1), ValueError, "nobs=-1 must be a positive integer"),
        (lambda: mj.fit_batch(norm_ll, INIT, np.stack([X, X]), nobs=0), ValueError, "nobs=0"),
        (lambda: mj.fit(norm_ll, INIT, X).conf_int("0.95"), TypeError, "level='0.95' must be a number"),
        (lambda: mj.GaussianMixture(2, reg_covar="a"), TypeError, "reg_covar='a' must be a number"),
        (lambda: mj.em(mj.GaussianMixture(2), np.zeros((10, 2)) + np.arange(10)[:, None], key=0),
         TypeError, r"jax\.random\.key\(0\)"),
        (lambda: mj.em(mj.GaussianMixture(1), np.zeros((10, 0))), ValueError, "no features"),
    ],
)
def test_plain_mistakes_get_clear_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_vector_log_prior_is_blamed_on_log_prior():
    with pytest.raises(TypeError, match="log_prior must return a scalar"):
        mj.fit(norm_ll, INIT, X, log_prior=lambda p: jnp.stack([p["mu"], p["sigma"]]))


def test_integer_component_logpdf_is_refused():
    def logpdf(p, x):
        return jnp.round(-x).astype(jnp.int32) + 0 * p["a"].astype(jnp.int32)

    with pytest.raises(TypeError, match="floating-point"):
        mj.em(mj.Mixture(logpdf, 2, params={"a": 1.0}), np.abs(X))


def test_em_batch_counts_failures_in_one_warning():
    rng = np.random.default_rng(3)
    good = rng.poisson(np.repeat([1.0, 9.0], 50))
    few = np.r_[np.zeros(50), np.ones(50)] * 4  # two distinct points for three components
    data = np.stack([good, good[::-1], few])
    with pytest.warns(mj.ConvergenceWarning) as rec:
        res = mj.em_batch(mj.PoissonMixture(3), data, maxiter=2)
    assert len([w for w in rec if issubclass(w.category, mj.ConvergenceWarning)]) == 1
    msg = str(rec[0].message)
    n_max = int(np.sum(np.asarray(res.status) == int(mj.Status.MAX_ITER)))
    assert n_max >= 1 and f"MAX_ITER {n_max}" in msg
    assert "fewer distinct points than the 3 components 1" in msg


def test_traced_one_sided_bounds_under_vmap_take_the_one_sided_transform():
    def fit_one(lo):
        init = {"mu": mj.Bounded(lo, jnp.inf, lo + 1.0), "sigma": mj.Positive(1.0)}
        r = mj.fit(norm_ll, init, X)
        return r.params["mu"], r.stderr["mu"], r.status

    los = jnp.array([-5.0, -1.0])
    mu, se, status = jax.vmap(fit_one)(los)
    assert (np.asarray(status) == int(mj.Status.SUCCESS)).all()
    # oracle: the bound is far from the MLE, so the closed-form normal MLE and its SE
    np.testing.assert_allclose(mu, X.mean(), rtol=1e-7)
    np.testing.assert_allclose(se, X.std() / np.sqrt(X.size), rtol=1e-5)
    # an upper one-sided and a two-sided traced bound too
    mu2 = jax.vmap(lambda hi: mj.fit(norm_ll, {"mu": mj.Bounded(-jnp.inf, hi, 0.0), "sigma": mj.Positive(1.0)},
                                     X).params["mu"])(jnp.array([10.0, 20.0]))
    np.testing.assert_allclose(mu2, X.mean(), rtol=1e-7)
    mu3 = jax.vmap(lambda hi: mj.fit(norm_ll, {"mu": mj.Bounded(-10.0, hi, 0.0), "sigma": mj.Positive(1.0)},
                                     X).params["mu"])(jnp.array([10.0, 20.0]))
    np.testing.assert_allclose(mu3, X.mean(), rtol=1e-7)


def test_em_batch_counts_a_collapsed_component_in_the_warning():
    """A dataset with 30 identical points lets a Gaussian component (reg_covar=0) sit on
    them with zero variance (the likelihood is unbounded): em_batch names it in its one
    warning (UNBOUNDED) and flags that component, the other dataset is unaffected."""
    rng = np.random.default_rng(0)
    tied = np.r_[np.zeros(30), rng.normal(5, 1, 30)][:, None]
    plain = np.r_[rng.normal(0, 1, 30), rng.normal(5, 1, 30)][:, None]
    with pytest.warns(mj.ConvergenceWarning, match=r"1 of 2 datasets .*UNBOUNDED 1") as rec:
        res = mj.em_batch(mj.GaussianMixture(2, reg_covar=0.0), np.stack([tied, plain]), key=jax.random.key(0))
    assert len([w for w in rec if issubclass(w.category, mj.ConvergenceWarning)]) == 1
    collapsed = np.asarray(res.collapsed)
    assert collapsed[0].sum() == 1 and not collapsed[1].any()
    # oracle: the collapsed component is the point mass at the tied value 0
    means = np.asarray(res.params["means"])[0, :, 0]
    assert means[collapsed[0]][0] == pytest.approx(0.0, abs=1e-12)
