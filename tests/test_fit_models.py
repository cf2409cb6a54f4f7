"""Regression models against statsmodels and scipy.optimize on the same data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import statsmodels.api as sm

import mlejax as mj
from mlejax.datasets import censored_weibull, challenger


def logit_ll(beta, d):
    eta = d["X"] @ beta
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def _logit_data(name):
    if name == "spector":
        data = sm.datasets.spector.load_pandas()
        X = sm.add_constant(data.exog.to_numpy(float), prepend=True)
        return X, data.endog.to_numpy(float)
    if name == "challenger":
        d = challenger()
        return sm.add_constant(d["temperature"]), d["failure"]
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(2000), rng.normal(size=(2000, 4))])
    y = (rng.random(2000) < 1 / (1 + np.exp(-X @ [0.3, 1.0, -0.5, 0.2, 0.0]))).astype(float)
    return X, y


@pytest.mark.parametrize("name", ["spector", "challenger", "simulated"])
@pytest.mark.parametrize("method", ["newton", "lbfgs"])
def test_logistic_regression_matches_statsmodels(name, method):
    X, y = _logit_data(name)
    ref = sm.Logit(y, X).fit(disp=0, tol=1e-12, maxiter=200)
    res = mj.fit(logit_ll, jnp.zeros(X.shape[1]), {"X": X, "y": y}, method=method,
                 tol=1e-12 if method == "newton" else None)
    assert res.converged, res.message
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-6)
    np.testing.assert_allclose(res.stderr, ref.bse, rtol=1e-6)
    np.testing.assert_allclose(res.loglik, ref.llf, rtol=1e-10)
    np.testing.assert_allclose(res.aic, ref.aic, rtol=1e-10)
    np.testing.assert_allclose(res.bic, ref.bic, rtol=1e-10)
    assert res.nobs == len(y)


def weibull_ll(p, d):
    k = jnp.exp(p["log_k"])
    z = (jnp.log(d["t"]) - d["X"] @ p["beta"]) * k
    return jnp.sum(d["event"] * (jnp.log(k) + z - jnp.log(d["t"])) - jnp.exp(z))


def _weibull_numpy(theta, X, t, event):
    beta, k = theta[:-1], np.exp(theta[-1])
    z = (np.log(t) - X @ beta) * k
    return np.sum(event * (np.log(k) + z - np.log(t)) - np.exp(z))


def test_censored_weibull_matches_scipy_and_survives_a_bad_start():
    d = censored_weibull(n=2000, seed=1)
    data = {k: d[k] for k in ("X", "t", "event")}
    p = d["X"].shape[1]
    # a researcher's usual start: all coefficients zero, shape 1
    res = mj.fit(weibull_ll, {"beta": jnp.zeros(p), "log_k": 0.0}, data)
    assert res.converged, res.message

    # plain Newton from the same start diverges (the reason for the safeguards)
    f = lambda th: weibull_ll({"beta": th[:-1], "log_k": th[-1]}, data)  # noqa: E731
    th = jnp.zeros(p + 1)
    newton_step = jax.jit(lambda th: th - jnp.linalg.solve(jax.hessian(f)(th), jax.grad(f)(th)))
    for _ in range(8):
        th = newton_step(th)
    assert not (np.isfinite(f(th)) and f(th) >= res.loglik - 1e-3)

    # oracle: scipy BFGS on the same likelihood written in numpy, started near the optimum
    fun = lambda th: -_weibull_numpy(th, d["X"], d["t"], d["event"])  # noqa: E731
    start = np.concatenate([np.log(np.mean(d["t"])) * np.eye(1, p)[0], [0.0]])
    ref = scipy.optimize.minimize(fun, start, method="Nelder-Mead",
                                  options={"maxiter": 40000, "maxfev": 40000, "xatol": 1e-10,
                                           "fatol": 1e-12})
    ref = scipy.optimize.minimize(fun, ref.x, method="BFGS", options={"gtol": 1e-8})
    est = np.concatenate([np.asarray(res.params["beta"]), [float(res.params["log_k"])]])
    np.testing.assert_allclose(est, ref.x, rtol=1e-5, atol=1e-6)
    assert float(res.loglik) >= -ref.fun - 1e-9
    # standard errors: central finite-difference Hessian of the numpy log-likelihood
    h = 1e-4
    k = p + 1
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = h * np.eye(k)[i], h * np.eye(k)[j]
            hess[i, j] = (fun(est + e_i + e_j) - fun(est + e_i - e_j) - fun(est - e_i + e_j)
                          + fun(est - e_i - e_j)) / (4 * h * h)
    se_fd = np.sqrt(np.diag(np.linalg.inv(hess)))
    se = np.concatenate([np.asarray(res.stderr["beta"]), [float(res.stderr["log_k"])]])
    np.testing.assert_allclose(se, se_fd, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_nearly_collinear_least_squares_converges_and_is_flagged(seed):
    """An optimum whose gradient cannot reach tol in float64 (condition number ~4e8)
    still converges (to its rounding floor), matches lstsq, and is flagged."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=200)
    X = np.column_stack([np.ones(200), x1, x1 + 1e-4 * rng.normal(size=200)])
    y = X @ [1.0, 2.0, -1.0] + rng.normal(size=200)

    def ll(b, d):
        return -0.5 * jnp.sum((d["y"] - d["X"] @ b) ** 2)

    with pytest.warns(mj.HessianWarning, match="ill-conditioned"):
        res = mj.fit(ll, jnp.zeros(3), {"X": X, "y": y})
    assert res.converged and bool(res.ill_conditioned)
    np.testing.assert_allclose(res.params, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6)
    np.testing.assert_allclose(res.cov, np.linalg.inv(X.T @ X), rtol=1e-6)
