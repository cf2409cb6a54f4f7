"""Mixtures of other families by EM: Poisson, Bernoulli, exponential (closed-form
M-steps) and any component family (Newton M-step), against scipy.optimize on the
marginal likelihood, finite-difference Hessians and simulation truth."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

import mlejax as mj


def _scipy_mle(negll, x0):
    with np.errstate(invalid="ignore"):  # BFGS's finite differences step across the inf wall of negll
        res = optimize.minimize(negll, x0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    res = optimize.minimize(negll, res.x, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    return res.x, -res.fun


def _fd_stderr(ll, theta, h=1e-4):
    """Standard errors from a central finite-difference Hessian of ll at theta."""
    k = len(theta)
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
            hess[i, j] = (ll(theta + e_i + e_j) - ll(theta + e_i - e_j) - ll(theta - e_i + e_j)
                          + ll(theta - e_i - e_j)) / (4 * h * h)
    return np.sqrt(np.diag(np.linalg.inv(-hess)))


def test_poisson_mixture_matches_scipy_and_fd_stderr():
    rng = np.random.default_rng(0)
    x = rng.poisson(np.where(rng.random(800) < 0.3, 2.0, 9.0))

    def ll(t):  # t = (w1, rate1, rate2), natural parameters
        w = np.array([t[0], 1 - t[0]])
        lp = np.log(w)[None] + stats.poisson.logpmf(x[:, None], np.array([t[1], t[2]])[None])
        return logsumexp(lp, axis=1).sum()

    r = mj.em(mj.PoissonMixture(2), x, tol=1e-12)
    order = np.argsort(np.asarray(r.params["rate"]))
    est = np.array([r.params["weights"][order[0]], *np.asarray(r.params["rate"])[order]])
    t_sp, ll_sp = _scipy_mle(lambda t: -ll(t) if 0 < t[0] < 1 and min(t[1:]) > 0 else np.inf, [0.5, 1.0, 5.0])
    assert float(r.loglik) == pytest.approx(ll_sp, rel=1e-9)
    np.testing.assert_allclose(est, t_sp, rtol=1e-4)
    se = np.array([r.stderr["weights"][order[0]], *np.asarray(r.stderr["rate"])[order]])
    np.testing.assert_allclose(se, _fd_stderr(ll, est), rtol=1e-3)
    assert int(r.nparams) == 3


def test_exponential_mixture_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.exponential(np.where(rng.random(1000) < 0.5, 1.0, 8.0))

    def negll(t):
        if not (0 < t[0] < 1 and min(t[1:]) > 0):
            return np.inf
        lp = np.log([t[0], 1 - t[0]])[None] + stats.expon.logpdf(x[:, None], scale=1 / np.array(t[1:]))[...]
        return -logsumexp(lp, axis=1).sum()

    r = mj.em(mj.ExponentialMixture(2), x, tol=1e-13, maxiter=20000, stderr=False)
    _, ll_sp = _scipy_mle(negll, [0.5, 1.5, 0.1])
    assert float(r.loglik) >= ll_sp - 1e-7 * abs(ll_sp)
    assert float(r.loglik) == pytest.approx(ll_sp, rel=1e-8)


def test_bernoulli_mixture_matches_scipy():
    rng = np.random.default_rng(2)
    z = rng.random(600) < 0.4
    p = np.where(z[:, None], [0.9, 0.8, 0.2], [0.1, 0.3, 0.7])
    x = (rng.random((600, 3)) < p).astype(float)

    def negll(t):
        w, p1, p2 = t[0], t[1:4], t[4:7]
        if not (0 < w < 1 and np.all((t[1:] > 0) & (t[1:] < 1))):
            return np.inf
        l1 = np.log(w) + (x * np.log(p1) + (1 - x) * np.log1p(-p1)).sum(1)
        l2 = np.log1p(-w) + (x * np.log(p2) + (1 - x) * np.log1p(-p2)).sum(1)
        return -np.logaddexp(l1, l2).sum()

    r = mj.em(mj.BernoulliMixture(2), x, tol=1e-12, maxiter=5000, stderr=False)
    _, ll_sp = _scipy_mle(negll, [0.5, 0.7, 0.6, 0.4, 0.3, 0.4, 0.6])
    assert float(r.loglik) == pytest.approx(ll_sp, rel=1e-8)
    assert r.params["probs"].shape == (2, 3) and r.nparams == 7
    with pytest.raises(ValueError, match="0/1 values"):
        mj.em(mj.BernoulliMixture(2), x + 0.5)


def _weibull_logpdf(p, x):  # a user-written component log-density
    z = x / p["scale"]
    return jnp.log(p["shape"]) - jnp.log(p["scale"]) + (p["shape"] - 1.0) * jnp.log(z) - z ** p["shape"]


WEIBULL = mj.Mixture(_weibull_logpdf, 2, params={"shape": mj.Positive(1.0), "scale": mj.Positive(1.0)})


def _weibull_data(n=2500, seed=3):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < 0.35
    return np.where(z, 1.0 * rng.weibull(1.5, n), 6.0 * rng.weibull(4.0, n))


def test_user_weibull_mixture_recovers_truth_within_stderr():
    x = _weibull_data()
    r = mj.em(WEIBULL, x, tol=1e-10)
    assert bool(r.converged) and not bool(r.hessian_not_negdef)
    order = np.argsort(np.asarray(r.params["scale"]))  # small-scale component first
    truth = {"weights": [0.35, 0.65], "shape": [1.5, 4.0], "scale": [1.0, 6.0]}
    for name, true in truth.items():
        est = np.asarray(r.params[name])[order]
        se = np.asarray(r.stderr[name])[order]
        assert np.all(np.abs(est - np.array(true)) < 3.5 * se), (name, est, se)
        assert np.all(se < 0.2 * np.abs(est))
    # Against scipy on the same marginal likelihood (the oracle for the optimum).
    def negll(t):
        if not (0 < t[0] < 1 and min(t[1:]) > 0):
            return np.inf
        lp = np.log([t[0], 1 - t[0]])[None] + np.stack(
            [stats.weibull_min.logpdf(x, t[1], scale=t[2]), stats.weibull_min.logpdf(x, t[3], scale=t[4])], 1)
        return -logsumexp(lp, axis=1).sum()

    _, ll_sp = _scipy_mle(negll, [0.35, 1.5, 1.0, 4.0, 6.0])
    assert float(r.loglik) == pytest.approx(ll_sp, rel=1e-9)


def test_generalised_em_never_decreases():
    """Newton M-steps only accept increases: the log-likelihood never falls."""
    x = _weibull_data()
    lls = []
    for t in range(1, 16):
        r = mj.em(WEIBULL, x, tol=0.0, maxiter=t, stderr=False)  # compiled fit shared with the test above
        assert not bool(r.loglik_decreased)
        lls.append(float(r.loglik))
    assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[1:]))


def test_student_t_mixture_with_fixed_marker_recovers_truth():
    """A user log-density with a Fixed degree of freedom: not estimated, no stderr;
    the other parameters are recovered within their standard errors."""
    rng = np.random.default_rng(4)
    n = 2000
    z = rng.random(n) < 0.5
    x = np.where(z, rng.standard_t(4, n), 8.0 + 2.0 * rng.standard_t(4, n))

    def t_logpdf(p, x):
        return jax.scipy.stats.t.logpdf(x, p["df"], p["loc"], p["scale"])

    m = mj.Mixture(t_logpdf, 2, params={"df": mj.Fixed(4.0), "loc": 0.0, "scale": mj.Positive(1.0)})
    r = mj.em(m, x, tol=1e-10)
    np.testing.assert_array_equal(r.params["df"], [4.0, 4.0])
    assert np.all(np.isnan(np.asarray(r.stderr["df"])))
    assert r.nparams == 1 + 2 * 2
    order = np.argsort(np.asarray(r.params["loc"]))
    for name, true in {"loc": [0.0, 8.0], "scale": [1.0, 2.0], "weights": [0.5, 0.5]}.items():
        est, se = np.asarray(r.params[name])[order], np.asarray(r.stderr[name])[order]
        assert np.all(np.abs(est - np.array(true)) < 3.5 * se), (name, est, se)


def test_generic_mixture_faults():
    x = _weibull_data(200)
    with pytest.raises(ValueError, match="n_components=0"):
        mj.Mixture(_weibull_logpdf, 0, params={"shape": 1.0, "scale": 1.0})
    with pytest.raises(ValueError, match="needs params="):
        mj.Mixture(_weibull_logpdf, 2)
    with pytest.raises(TypeError, match=r"one log-density per observation, shape \(200,\)"):
        mj.em(mj.Mixture(lambda p, x: jnp.sum(x * p["a"]), 2, params={"a": 1.0}), x)
    bad = {"weights": [0.7, 0.7], "shape": [1.0, 2.0], "scale": [1.0, 2.0]}
    with pytest.raises(ValueError, match="sums to 1.4, not 1"):
        mj.em(WEIBULL, x, init=bad)
    bad = {"weights": [0.5, 0.5], "shape": [-1.0, 2.0], "scale": [1.0, 2.0]}
    with pytest.raises(ValueError, match=r"init\['shape'\].*lower bound"):
        mj.em(WEIBULL, x, init=bad)
    with pytest.raises(ValueError, match="non-negative integers"):
        mj.em(mj.PoissonMixture(2), np.array([1.0, -2.0, 3.0]))
    with pytest.raises(ValueError, match="n_components=5 is more than the number of observations"):
        mj.em(mj.PoissonMixture(5), np.array([1, 2, 3]))


def test_predict_and_responsibilities_poisson():
    rng = np.random.default_rng(6)
    x = rng.poisson(np.where(rng.random(800) < 0.5, 1.0, 20.0))  # the shape of the test above: no recompile
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = mj.em(mj.PoissonMixture(2), x, stderr=False)
    lp = np.log(np.asarray(r.params["weights"]))[None] + stats.poisson.logpmf(
        x[:, None], np.asarray(r.params["rate"])[None])
    resp = np.asarray(r.responsibilities(x))
    np.testing.assert_allclose(resp, np.exp(lp - logsumexp(lp, axis=1, keepdims=True)), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(r.predict(x)), lp.argmax(1))
    np.testing.assert_allclose(float(r.score(x)), logsumexp(lp, axis=1).sum(), rtol=1e-12)


def test_poisson_component_at_the_boundary_is_flagged_and_warned():
    """Issue 16: a component that takes only zeros drives its rate to the boundary 0.
    As for single fits (FAULTS row 16) the parameter is flagged (within half a standard
    error of the bound), its standard error is NaN and a warning says so; the other
    component keeps its standard error, and it matches scipy's fit of the same mixture."""
    rng = np.random.default_rng(0)
    x = np.r_[np.zeros(40), rng.poisson(6, 60)]
    with pytest.warns(mj.HessianWarning, match=r"rate\[[01]\] = .* on the boundary") as rec:
        r = mj.em(mj.PoissonMixture(2), x, tol=1e-10, maxiter=3000)
    lo = int(np.argmin(np.asarray(r.params["rate"])))
    assert any(f"rate[{lo}] = " in str(w.message) for w in rec)  # the warning names the low rate
    assert bool(np.asarray(r.at_bound["rate"])[lo]) and not bool(np.asarray(r.at_bound["rate"])[1 - lo])
    assert np.isnan(float(r.stderr["rate"][lo])) and np.isfinite(float(r.stderr["rate"][1 - lo]))
    assert "boundary" in r.message
    # oracle: scipy's maximum of the same marginal likelihood (the low rate is an interior
    # maximum here, but closer to 0 than half its standard error: Wald intervals cross 0)
    nll = lambda t: -np.sum(logsumexp(np.log([t[0], 1 - t[0]])[None] + stats.poisson.logpmf(  # noqa: E731
        x[:, None], [t[1], t[2]]), axis=1))
    opt = optimize.minimize(nll, [0.4, 0.1, 6.0], bounds=[(1e-6, 1 - 1e-6), (1e-9, 3), (1, 20)], tol=1e-12)
    np.testing.assert_allclose(np.sort(np.asarray(r.params["rate"])), opt.x[1:], rtol=1e-3, atol=1e-4)
    assert abs(float(r.loglik) + opt.fun) < 1e-6


def test_float32_em_monotonicity_slack_scales_with_eps():
    """Issue 16: the 'log-likelihood decreased' flag allows for rounding in the data's
    own dtype. A float32 Poisson mixture run to a fixed point (tol=0) wanders by
    rounding only (no false alarm); a real decrease is still caught in float64."""
    from mlejax.mixture._em import monotone_slack

    rng = np.random.default_rng(1)
    x32 = jnp.asarray(rng.poisson(np.repeat([1.0, 9.0], 2000)), jnp.float32)
    model = mj.PoissonMixture(2).bind(x32)
    out = jax.jit(lambda x: mj.mixture.em_pure(model, x, jnp.ones(x.shape[0], x.dtype), jax.random.key(0), None,
                                               jnp.asarray(0.0, x.dtype), jnp.asarray(300, jnp.int32)))(x32)
    assert out.loglik.dtype == jnp.float32 and int(out.n_iter) == 300
    assert not bool(out.decreased)
    ll = jnp.asarray(-1.0e4, jnp.float64)
    assert float(monotone_slack(ll, 4000.0)) < 1e-9  # a drop of 1e-9 in float64 is caught
    ll32 = jnp.asarray(-1.0e4, jnp.float32)
    assert float(monotone_slack(ll32, 4000.0)) > 100 * 1e4 * float(jnp.finfo(jnp.float32).eps)
