"""Gaussian mixtures by EM, against scikit-learn's GaussianMixture (the oracle);
faults rows 23-28. The Monte-Carlo check of the standard errors is a slow check
(benchmarks/slow_checks)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SkGMM

import mlejax as mj
from mlejax.mixture import _em

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _synthetic(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [3.0, 1.0, -2.0], [-2.0, 4.0, 1.0]])
    a = rng.normal(size=(3, 3, 3)) * 0.4
    covs = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(3)
    lab = rng.integers(0, 3, n)
    return centres[lab] + np.einsum("nde,ne->nd", np.linalg.cholesky(covs)[lab], rng.normal(size=(n, 3)))


def _sk_start(x, ct, k=3):
    """Starting parameters from a short scikit-learn run, in both parametrisations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = SkGMM(k, covariance_type=ct, max_iter=2, random_state=3, init_params="random").fit(x)
    prec = g.precisions_
    cov = np.linalg.inv(prec) if ct in ("full", "tied") else 1.0 / prec
    return {"weights": g.weights_, "means": g.means_, "covariances": cov}, prec


def _sk_fit(x, ct, init, prec, tol, max_iter, k=3, reg=1e-6):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SkGMM(
            k, covariance_type=ct, weights_init=init["weights"], means_init=init["means"],
            precisions_init=prec, tol=tol, max_iter=max_iter, reg_covar=reg, init_params="random",
        ).fit(x)


@pytest.mark.parametrize("data", ["iris", "synthetic"])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_same_loglik_as_sklearn_from_same_start(ct, data):
    if data == "iris":
        x = load_iris().data
    else:  # iris's shape (150, 4): the compiled fit is reused
        x = np.c_[_synthetic(150), np.random.default_rng(1).normal(size=150)]
    init, prec = _sk_start(x, ct)
    for tol, max_iter in [(0.0, 25), (1e-7, 1000)]:
        sk = _sk_fit(x, ct, init, prec, tol, max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mj.ConvergenceWarning)
            r = mj.em(mj.GaussianMixture(3, ct), x, init=init, tol=tol, maxiter=max_iter, stderr=False)
        ll_sk = sk.score(x) * x.shape[0]  # scikit-learn's score is the per-sample mean
        assert abs(float(r.loglik) - ll_sk) <= 1e-8 * abs(ll_sk)
        assert int(r.n_iter) == sk.n_iter_
        assert bool(r.converged) == (tol > 0)
        np.testing.assert_allclose(r.params["weights"], sk.weights_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(r.params["means"], sk.means_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(r.params["covariances"], sk.covariances_, rtol=1e-6, atol=1e-8)
    # The fitted density's methods agree with scikit-learn's.
    np.testing.assert_allclose(r.responsibilities(x), sk.predict_proba(x), atol=1e-7)
    np.testing.assert_array_equal(r.predict(x), sk.predict(x))
    np.testing.assert_allclose(r.score_samples(x), sk.score_samples(x), rtol=1e-10)
    np.testing.assert_allclose(float(r.score(x)), sk.score(x) * len(x), rtol=1e-10)
    np.testing.assert_allclose(float(r.bic), sk.bic(x), rtol=1e-10)
    np.testing.assert_allclose(float(r.aic), sk.aic(x), rtol=1e-10)
    assert r.nparams == sk._n_parameters()


def test_sample_weights_equal_repeated_rows():
    """Integer frequency weights give scikit-learn's fit of the repeated data."""
    x = load_iris().data
    w = np.random.default_rng(0).integers(0, 4, len(x))
    init, prec = _sk_start(x, "full")
    sk = _sk_fit(np.repeat(x, w, axis=0), "full", init, prec, 0.0, 30)
    r = mj.em(mj.GaussianMixture(3), x, weights=w, init=init, tol=0.0, maxiter=30, stderr=False)
    ll_sk = sk.score(np.repeat(x, w, axis=0)) * w.sum()
    assert abs(float(r.loglik) - ll_sk) <= 1e-8 * abs(ll_sk)
    assert float(r.nobs) == w.sum()


def test_kmeans_init_and_restarts_reach_sklearn_optimum():
    x = _synthetic(600, seed=1)
    sk = SkGMM(3, n_init=3, random_state=0, tol=1e-8, max_iter=1000).fit(x)
    # key 0: one of the three k-means starts ends in a worse local optimum (130 units of
    # log-likelihood below); the best restart is kept
    r = mj.em(mj.GaussianMixture(3), x, key=jax.random.key(0), n_init=3, tol=1e-8, stderr=False)
    assert r.restart_logliks.shape == (3,)
    assert float(jnp.min(r.restart_logliks)) < sk.score(x) * len(x) - 10
    assert float(r.loglik) == pytest.approx(float(jnp.max(r.restart_logliks)))
    assert float(r.loglik) == pytest.approx(sk.score(x) * len(x), rel=1e-7)
    rr = mj.em(mj.GaussianMixture(3), x, n_init=3, tol=1e-8, init_method="random", stderr=False)
    assert float(rr.loglik) == pytest.approx(sk.score(x) * len(x), rel=1e-6)


def test_loglik_never_decreases_and_tol0_runs_maxiter():
    """Unregularised EM from a poor random start: the log-likelihood after t
    iterations never falls as t grows (scikit-learn's test_monotonic_likelihood)."""
    x = _synthetic(300, seed=2)
    lls = []
    for t in range(1, 31):
        r = mj.em(mj.GaussianMixture(4, "full", reg_covar=0.0), x, init_method="random", tol=0.0,
                  maxiter=t, stderr=False)
        assert int(r.n_iter) == t and not bool(r.converged) and not bool(r.loglik_decreased)
        lls.append(float(r.loglik))
    assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[1:]))


def test_second_call_does_not_recompile():
    model = mj.GaussianMixture(2, "diag", reg_covar=1e-5)
    x = _synthetic(200, seed=3)
    mj.em(model, x, stderr=False, tol=1e-4)
    before = _em._em_jit._cache_size()
    mj.em(mj.GaussianMixture(2, "diag", reg_covar=1e-3), x + 1.0, stderr=False, tol=1e-3, maxiter=50)
    assert _em._em_jit._cache_size() == before


def test_vmap_over_datasets_equals_single_fits():
    xs = np.stack([_synthetic(150, seed=s) for s in range(3)])
    model = mj.GaussianMixture(2, "spherical")
    single = [mj.em(model, x, stderr=False, tol=1e-6) for x in xs]

    def one(x):
        w = jnp.ones(x.shape[0])
        return _em.em_pure(model, x, w, jax.random.key(0), None, jnp.asarray(1e-6), jnp.asarray(1000))

    out = jax.jit(jax.vmap(one))(jnp.asarray(xs))
    np.testing.assert_allclose(out.loglik, [float(r.loglik) for r in single], rtol=1e-10)


# -- faults (rows 23-28) ------------------------------------------------------------------


def _collapsing_data():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(60, 2)), np.tile([[8.0, 8.0]], (5, 1))])


def test_fault23_collapse_regularised_or_clear_error():
    x = _collapsing_data()
    init = {"weights": np.array([0.5, 0.5]), "means": np.array([[0.0, 0.0], [8.0, 8.0]]),
            "covariances": np.array([np.eye(2), np.eye(2)])}
    r = mj.em(mj.GaussianMixture(2), x, init=init, stderr=False)  # default reg_covar=1e-6
    assert np.all(np.isfinite(np.asarray(r.params["covariances"])))
    assert float(r.params["covariances"][1, 0, 0]) == pytest.approx(1e-6, rel=1e-3)
    with pytest.raises(ValueError, match="collapsed.*reg_covar > 0"):
        mj.em(mj.GaussianMixture(2, reg_covar=0.0), x, init=init)


def test_fault24_more_components_than_points():
    x = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="n_components=5 is more than the number of observations"):
        mj.em(mj.GaussianMixture(5), x)
    xd = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0]]), 10, axis=0)
    with pytest.warns(mj.ConvergenceWarning, match="only 2 distinct data points"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mj.HessianWarning)
            mj.em(mj.GaussianMixture(3), xd, maxiter=5, stderr=False)


def test_fault25_not_converged_flagged_and_warned():
    x = _synthetic(600)  # shapes and options of test_kmeans_init...: no recompile
    with pytest.warns(mj.ConvergenceWarning, match="did not converge in 2 iterations"):
        r = mj.em(mj.GaussianMixture(3), x, maxiter=2, tol=1e-12, n_init=3, stderr=False)
    assert not bool(r.converged) and int(r.status) == int(mj.Status.MAX_ITER)
    assert "maxiter" in r.message


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (lambda: mj.GaussianMixture(0), {}, "n_components=0 must be an integer >= 1"),
        (lambda: mj.GaussianMixture(2, reg_covar=-1e-3), {}, "reg_covar=-0.001 must be a finite number >= 0"),
        (lambda: mj.GaussianMixture(2, "banana"), {}, "covariance_type='banana' is not known"),
        (lambda: mj.GaussianMixture(2), {"tol": -1.0}, "tol=-1.0 must be a finite number >= 0"),
        (lambda: mj.GaussianMixture(2), {"maxiter": 0}, "maxiter=0 must be an integer >= 1"),
        (lambda: mj.GaussianMixture(2), {"n_init": 0}, "n_init=0 must be an integer >= 1"),
        (lambda: mj.GaussianMixture(2), {"init_method": "best"}, "init_method='best' is not known"),
    ],
)
def test_fault27_bad_hyperparameters(make, kwargs, match):
    x = _synthetic(50)
    with pytest.raises(ValueError, match=match):
        mj.em(make(), x, **kwargs)


@pytest.mark.parametrize(
    "ct, bad, match",
    [
        ("full", {"weights": [0.5, 0.6]}, "sums to 1.1, not 1"),
        ("full", {"weights": [1.2, -0.2]}, "strictly positive"),
        ("full", {"covariances": [[[1.0, 2.0], [2.0, 1.0]], np.eye(2)]}, r"\[0\] is not positive definite"),
        ("full", {"covariances": [[[1.0, 0.5], [0.1, 1.0]], np.eye(2)]}, "not symmetric"),
        ("full", {"means": np.zeros((3, 2))}, r"needs \(2, 2\)"),
        ("tied", {"covariances": np.stack([np.eye(2)] * 2)}, r"'tied' needs \(2, 2\)"),
        ("diag", {"covariances": [[1.0, 0.0], [1.0, 1.0]]}, "strictly positive variances"),
    ],
)
def test_fault28_invalid_init(ct, bad, match):
    x = _synthetic(50)[:, :2]
    cov = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2), "diag": np.ones((2, 2)), "spherical": np.ones(2)}[ct]
    init = {"weights": [0.5, 0.5], "means": [[0.0, 0.0], [1.0, 1.0]], "covariances": cov}
    init.update(bad)
    with pytest.raises(ValueError, match=match):
        mj.em(mj.GaussianMixture(2, ct), x, init=init)
    with pytest.raises(ValueError, match="keys 'weights', 'means', 'covariances'"):
        mj.em(mj.GaussianMixture(2, ct), x, init={"weights": [0.5, 0.5]})
    good = {"weights": [0.5, 0.5], "means": [[0.0, 0.0], [1.0, 1.0]], "covariances": cov}
    with pytest.raises(ValueError, match="use n_init=1 with it"):
        mj.em(mj.GaussianMixture(2, ct), x, init=good, n_init=3)


def test_bad_data_refused():
    with pytest.raises(ValueError, match="NaN or inf"):
        mj.em(mj.GaussianMixture(2), np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="weights has shape"):
        mj.em(mj.GaussianMixture(2), _synthetic(30), weights=np.ones(3))


def test_sample_and_select_components():
    x = _synthetic(600, seed=4)
    sel = mj.select_components(mj.GaussianMixture(1), x, n_components=range(2, 5), n_init=3, tol=1e-6)
    assert sel.best == 3 and sel.criterion == "bic"
    for k, r in zip(sel.n_components, sel.results):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = SkGMM(int(k), init_params="random").fit(x[:30])
        assert r.nparams == sk._n_parameters()
        assert float(r.bic) == pytest.approx(-2 * float(r.loglik) + r.nparams * np.log(len(x)))
    best = sel.best_result
    xs, lab = best.sample(jax.random.key(0), 20000)
    assert xs.shape == (20000, 3) and lab.shape == (20000,)
    np.testing.assert_allclose(np.mean(xs, 0), np.asarray(best.params["weights"] @ best.params["means"]), atol=0.06)


@pytest.mark.parametrize("ct", ["tied"])  # "diag"/"spherical" also pass (log-variances); kept short
def test_standard_errors_match_finite_difference_hessian(ct):
    """At the MLE, the standard errors of the natural parameters equal those from a
    finite-difference Hessian of the marginal log-likelihood written with scipy in
    the natural parameters (invariance of the delta method)."""
    from scipy.stats import multivariate_normal

    x = _synthetic(400, seed=7)[:, :2]
    r = mj.em(mj.GaussianMixture(2, ct, reg_covar=0.0), x, tol=1e-14, maxiter=5000)
    p = {k: np.asarray(v) for k, v in r.params.items()}

    def unpack(t):
        w = np.array([t[0], 1 - t[0]])
        mu = t[1:5].reshape(2, 2)
        c = t[5:]
        if ct == "tied":
            cov = np.array([[[c[0], c[1]], [c[1], c[2]]]] * 2)
        elif ct == "diag":
            cov = np.array([np.diag(c[:2]), np.diag(c[2:])])
        else:
            cov = np.array([np.eye(2) * c[0], np.eye(2) * c[1]])
        return w, mu, cov

    def ll(t):
        w, mu, cov = unpack(t)
        lp = np.stack([np.log(w[k]) + multivariate_normal(mu[k], cov[k]).logpdf(x) for k in range(2)], 1)
        return np.logaddexp(lp[:, 0], lp[:, 1]).sum()

    def free_cov(c):
        return [c[0, 0], c[0, 1], c[1, 1]] if ct == "tied" else list(c.ravel())

    cfree = free_cov(p["covariances"])
    theta = np.concatenate([[p["weights"][0]], p["means"].ravel(), cfree])
    k = len(theta)
    h = 1e-4 * np.maximum(np.abs(theta), 0.1)
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            hess[i, j] = (ll(theta + ei + ej) - ll(theta + ei - ej) - ll(theta - ei + ej)
                          + ll(theta - ei - ej)) / (4 * h[i] * h[j])
    se_fd = np.sqrt(np.diag(np.linalg.inv(-hess)))
    s = {k_: np.asarray(v) for k_, v in r.stderr.items()}
    s_c = free_cov(s["covariances"])
    se_mj = np.concatenate([[s["weights"][0]], s["means"].ravel(), s_c])
    np.testing.assert_allclose(se_mj, se_fd, rtol=2e-4)
    assert s["weights"][1] == pytest.approx(s["weights"][0], rel=1e-8)  # w2 = 1 - w1


def test_many_features_use_the_cholesky_e_step_and_match_sklearn():
    """d = 20 > 16: the E-step takes the per-component Cholesky form (no n x d^2
    feature array); same log-likelihood as scikit-learn from the same start."""
    rng = np.random.default_rng(8)
    x = np.r_[rng.normal(size=(200, 20)), 0.7 * rng.normal(size=(200, 20)) + 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = SkGMM(2, max_iter=2, init_params="random", random_state=0).fit(x)
    init = {"weights": g.weights_, "means": g.means_, "covariances": np.linalg.inv(g.precisions_)}
    sk = _sk_fit(x, "full", init, g.precisions_, 0.0, 15, k=2)
    r = mj.em(mj.GaussianMixture(2), x, init=init, tol=0.0, maxiter=15, stderr=False)
    assert abs(float(r.loglik) - sk.score(x) * len(x)) <= 1e-8 * abs(sk.score(x) * len(x))
