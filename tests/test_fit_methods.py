"""Every method reaches the same optimum; the compiled fit is cached; any pytree works."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy import stats

import mlejax as mj


def gamma_ll(p, x):
    return jnp.sum(stats.gamma.logpdf(x, p["shape"], scale=1.0 / p["rate"]))


X_GAMMA = np.random.default_rng(0).gamma(2.5, 1 / 1.7, size=300)
INIT_GAMMA = {"shape": mj.Positive(1.0), "rate": mj.Positive(1.0)}
# oracle: the profile equation for the gamma shape, log k - digamma(k) = log(mean) - mean(log)
_S = np.log(X_GAMMA.mean()) - np.mean(np.log(X_GAMMA))


def _gamma_mle():
    from scipy.optimize import brentq
    from scipy.special import digamma

    k = brentq(lambda k: np.log(k) - digamma(k) - _S, 1e-3, 1e3, xtol=1e-15, rtol=1e-15)
    return k, k / X_GAMMA.mean()


ADAM = optax.adam(0.05)
OPTAX_LBFGS = optax.lbfgs()  # a GradientTransformationExtraArgs
# tol bounds the (secant) Newton decrement, twice the log-likelihood still to gain
METHODS = {
    "newton": dict(method="newton"),
    "trust-region": dict(method="trust-region"),
    "lbfgs": dict(method="lbfgs", tol=1e-14),
    "optax-adam": dict(method=ADAM, tol=1e-16, maxiter=20000),
    "optax-lbfgs": dict(method=OPTAX_LBFGS, tol=1e-14, maxiter=2000),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_reaches_the_closed_form_optimum(name):
    res = mj.fit(gamma_ll, INIT_GAMMA, X_GAMMA, **METHODS[name])
    assert res.converged, (name, res.message, int(res.n_iter))
    k, rate = _gamma_mle()
    np.testing.assert_allclose(res.params["shape"], k, rtol=1e-8)
    np.testing.assert_allclose(res.params["rate"], rate, rtol=1e-8)


def test_methods_agree_with_each_other_on_a_regression():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(500), rng.normal(size=(500, 3))])
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, -0.2, 0.1])))

    def ll(b, d):
        eta = d["X"] @ b
        return jnp.sum(d["y"] * eta - jnp.exp(eta))

    fits = {m: mj.fit(ll, jnp.zeros(4), {"X": X, "y": y}, **METHODS[m]) for m in METHODS}
    ref = fits["newton"]
    for name, res in fits.items():
        assert res.converged, name
        np.testing.assert_allclose(res.params, ref.params, rtol=1e-8, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(res.stderr, ref.stderr, rtol=1e-7, err_msg=name)


def test_second_call_with_same_shapes_does_not_recompile():
    traces = []

    def ll(p, x):
        traces.append(1)  # runs only when JAX traces the function
        return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))

    rng = np.random.default_rng(2)
    init = {"mu": 0.0, "sigma": mj.Positive(1.0)}
    mj.fit(ll, init, rng.normal(size=100))
    n_first = len(traces)
    assert n_first > 0
    # new data values, new starting values, new tol and maxiter: same compiled fit
    res = mj.fit(ll, {"mu": 1.0, "sigma": mj.Positive(2.0)}, rng.normal(size=100), tol=1e-8,
                 maxiter=50)
    assert res.converged
    assert len(traces) == n_first
    # a new shape compiles once more
    mj.fit(ll, init, rng.normal(size=101))
    assert len(traces) > n_first
    # new bounds values do not recompile either
    n = len(traces)
    mj.fit(ll, {"mu": mj.Bounded(-5.0, 5.0, 0.0), "sigma": mj.Positive(1.0)}, rng.normal(size=100))
    n2 = len(traces)
    mj.fit(ll, {"mu": mj.Bounded(-9.0, 9.0, 1.0), "sigma": mj.Positive(1.0)}, rng.normal(size=100))
    assert len(traces) == n2 > n


def test_any_pytree_of_parameters_and_names():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2)) * np.array([1.0, 3.0]) + np.array([0.5, -1.0])

    def ll(p, x):
        loc, (s1, s2) = p["loc"], p["scale"]["sd"]
        return jnp.sum(stats.norm.logpdf(x[:, 0], loc[0], s1) + stats.norm.logpdf(x[:, 1], loc[1], s2))

    init = {"loc": jnp.zeros(2), "scale": {"sd": (mj.Positive(1.0), mj.Positive(1.0))}}
    res = mj.fit(ll, init, x)
    assert res.names == ("loc[0]", "loc[1]", "scale.sd[0]", "scale.sd[1]")
    np.testing.assert_allclose(res.params["loc"], x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(res.params["scale"]["sd"][1], x[:, 1].std(), rtol=1e-10)
    np.testing.assert_allclose(res.stderr["loc"], x.std(0) / np.sqrt(200), rtol=1e-8)
    assert res.cov.shape == (4, 4) and res.information.shape == (4, 4)
    # a tuple at the root and a matrix leaf
    res2 = mj.fit(lambda p, x: ll({"loc": p[0], "scale": {"sd": (p[1][0, 0], p[1][1, 1])}}, x)
                  - jnp.sum(p[1][0, 1] ** 2 + p[1][1, 0] ** 2),
                  (jnp.zeros(2), jnp.eye(2)), x)
    assert res2.names[:2] == ("theta[0][0]", "theta[0][1]")
    assert res2.names[2:] == ("theta[1][0,0]", "theta[1][0,1]", "theta[1][1,0]", "theta[1][1,1]")


def test_fixed_leaves_are_not_estimated():
    x = np.random.default_rng(4).normal(2.0, 1.5, size=150)

    def ll(p, x):
        return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))

    res = mj.fit(ll, {"mu": mj.Fixed(0.0), "sigma": mj.Positive(1.0)}, x)
    assert res.names == ("sigma",) and res.nparams == 1
    assert float(res.params["mu"]) == 0.0
    assert np.isnan(res.stderr["mu"])
    # with mu fixed at 0 the MLE of sigma^2 is mean(x^2)
    np.testing.assert_allclose(res.params["sigma"] ** 2, np.mean(x**2), rtol=1e-10)
    lo, hi = res.conf_int()["mu"]
    assert np.isnan(lo) and np.isnan(hi)


def test_bounded_and_one_sided_bounds():
    x = np.random.default_rng(5).normal(4.0, 1.0, size=80)

    def ll(p, x):
        return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))

    for mu in (mj.Bounded(3.0, jnp.inf, 3.5), mj.Bounded(-jnp.inf, 10.0, 0.0),
               mj.Bounded(-10.0, 10.0)):
        res = mj.fit(ll, {"mu": mu, "sigma": mj.Bounded(0.1, 5.0, 1.0)}, x)
        np.testing.assert_allclose(res.params["mu"], x.mean(), rtol=1e-10)
        np.testing.assert_allclose(res.stderr["mu"], x.std() / np.sqrt(80), rtol=1e-8)


def test_vmap_over_fit_equals_a_loop():
    rng = np.random.default_rng(6)
    xs = rng.exponential(size=(5, 60))

    def ll(p, x):
        return jnp.sum(jnp.log(p) - p * x)

    batched = jax.vmap(lambda x: mj.fit(ll, mj.Positive(1.0), x))(xs)
    for i in range(5):
        single = mj.fit(ll, mj.Positive(1.0), xs[i])
        np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-12)
        np.testing.assert_allclose(batched.stderr[i], single.stderr, rtol=1e-12)
        assert int(batched.status[i]) == int(single.status)
    np.testing.assert_allclose(batched.params, 1 / xs.mean(1), rtol=1e-10)


def test_jit_over_fit():
    def ll(p, x):
        return jnp.sum(jnp.log(p) - p * x)

    f = jax.jit(lambda x: mj.fit(ll, mj.Positive(1.0), x).params)
    x = np.random.default_rng(7).exponential(size=30)
    np.testing.assert_allclose(f(x), 1 / x.mean(), rtol=1e-10)
