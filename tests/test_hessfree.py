"""Many parameters (issue 14 part 4): cov=None forms no Hessian; Hessian-free standard
errors (CG on Hessian-vector products) against the dense inverse of an independently
computed Hessian; dense matrices that would not fit are refused before any work."""

import warnings

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj
from mlejax._hessfree import DENSE_MAX_PARAMS

rng = np.random.default_rng(3)


@jax.custom_vjp
def _twice(x):
    return 2.0 * x


def _no_second(x, g):
    raise RuntimeError("a second derivative was taken")


_twice.defvjp(lambda x: (2.0 * x, None), _no_second)


@jax.custom_vjp
def _square(x):
    return x * x


_square.defvjp(lambda x: (x * x, x), lambda x, g: (_twice(x) * g,))


def _first_order_only(p, x):
    """A log-likelihood with a gradient but no Hessian: any second derivative raises."""
    return -0.5 * jnp.sum(_square(x - p["mu"]))


def test_cov_none_forms_no_hessian():
    x = rng.normal(2.0, 1.0, 50)
    res = mj.fit(_first_order_only, {"mu": 0.0}, x, method="lbfgs", cov=None)
    assert res.converged and abs(float(res.params["mu"]) - x.mean()) < 1e-6
    assert res.stderr is None and res.cov is None and res.information is None
    assert "no inference" in res.message and "Covariance:" in res.summary()
    with pytest.raises((TypeError, RuntimeError), match="second derivative|jvp"):  # the dense path
        mj.fit(_first_order_only, {"mu": 0.0}, x, method="lbfgs")
    with pytest.raises(ValueError, match="no information matrix"):
        res.with_cov("observed")
    with pytest.raises(ValueError, match="no standard errors"):
        res.conf_int()


def _mlp_loglik(p, d):
    """A heteroscedastic Gaussian MLP regression (one hidden tanh layer)."""
    h = jnp.tanh(d["x"][:, None] * p["w1"] + p["b1"])
    out = h @ p["w2"] + p["b2"]
    return jnp.sum(jax.scipy.stats.norm.logpdf(d["y"], out[:, 0], jnp.exp(out[:, 1])))


def _mlp_fit():
    # data of its own (a seed on which L-BFGS reaches the maximum: on some draws this small
    # network's information is indefinite where L-BFGS stops)
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 2, 300)
    y = np.sin(x) + (0.2 + 0.1 * np.abs(x)) * rng.normal(size=300)
    init = {"w1": rng.normal(size=3), "b1": rng.normal(size=3) * 0.1, "w2": rng.normal(size=(3, 2)) * 0.3,
            "b2": np.zeros(2)}
    with warnings.catch_warnings():  # L-BFGS may end on precision loss, at |grad| ~ 1e-6
        warnings.simplefilter("ignore", mj.ConvergenceWarning)
        return mj.fit(_mlp_loglik, init, {"x": x, "y": y}, method="lbfgs", cov=None)


def test_cg_stderr_equals_dense_on_small_network():
    res = _mlp_fit()
    assert float(res.grad_norm) < 1e-4
    # oracle: the dense Hessian of the log-likelihood at the estimate, inverted by numpy
    flat, unravel = jax.flatten_util.ravel_pytree(res.params)
    hess = np.asarray(jax.jit(jax.hessian(lambda v: _mlp_loglik(unravel(v), res._data)))(flat))
    cov = np.linalg.inv(-hess)
    assert np.all(np.linalg.eigvalsh(-hess) > 0)
    which = ["w1[0]", "b1[2]", "w2[1,1]", "b2"]
    got = res.stderr_for(which)
    idx = [res.names.index(n) for n in got]
    np.testing.assert_allclose(list(got.values()), np.sqrt(np.diag(cov))[idx], rtol=1e-6)
    # delta method, Hessian-free, against J C J'
    fn = lambda p: jnp.stack([p["w2"][0, 0] * p["w1"][0], jnp.sum(p["b1"])])  # noqa: E731
    d = res.delta(fn)
    jac = np.asarray(jax.jit(jax.jacobian(lambda v: fn(unravel(v))))(flat))
    np.testing.assert_allclose(np.asarray(d.cov), jac @ cov @ jac.T, rtol=1e-6)


def test_stderr_for_at_fit_time_on_natural_scale():
    x = rng.normal(1.0, 2.0, 200)
    ll = lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))  # noqa: E731
    init = {"mu": 0.0, "sigma": mj.Positive(1.0)}
    dense = mj.fit(ll, init, x)
    free = mj.fit(ll, init, x, stderr_for=["sigma"])
    assert free.cov_type == "hvp" and free.cov is None
    assert np.isnan(float(free.stderr["mu"]))
    # closed form at the MLE: se(sigma) = sigma / sqrt(2n)
    np.testing.assert_allclose(float(free.stderr["sigma"]), float(dense.params["sigma"]) / np.sqrt(400), rtol=1e-8)
    np.testing.assert_allclose(float(free.stderr["sigma"]), float(dense.stderr["sigma"]), rtol=1e-8)
    with pytest.raises(ValueError, match="not a free parameter"):
        free.stderr_for("tau")
    with pytest.raises(ValueError, match="does not go with cov='opg'"):
        mj.fit(ll, init, x, cov="opg", stderr_for=["mu"])


def test_cg_reports_non_positive_curvature_as_nan():
    # at (0, 0) the information is diag(2, -2): a saddle
    ll = lambda p, x: -p["a"] ** 2 + p["b"] ** 2 - p["b"] ** 4  # noqa: E731
    with pytest.warns(mj.ConvergenceWarning, match="iteration limit"):
        res = mj.fit(ll, {"a": 0.0, "b": 0.0}, None, cov=None, maxiter=0)
    se = res.stderr_for(["a", "b"])
    assert abs(se["a"] - np.sqrt(0.5)) < 1e-12 and np.isnan(se["b"])


def test_large_k_is_hessian_free_and_dense_refused_before_work():
    k = DENSE_MAX_PARAMS + 4
    x = rng.normal(size=k)
    ll = lambda p, x: -0.5 * jnp.sum((x - p["w"]) ** 2 / 4.0)  # noqa: E731
    res = mj.fit(ll, {"w": np.zeros(k)}, x, method="lbfgs", nobs=10 * k)
    assert res.cov_type == "hvp" and res.information is None and res.stderr is None
    se = res.stderr_for(["w[0]", k - 1])
    np.testing.assert_allclose(list(se.values()), [2.0, 2.0], rtol=1e-8)

    def never(p, x):
        raise AssertionError("the log-likelihood must not be evaluated")

    with pytest.raises(ValueError, match=r"forms the 300000 x 300000 Hessian .* GiB"):
        mj.fit(never, {"w": np.zeros(300_000)}, None)
    with pytest.raises(ValueError, match=r"cov='opg' forms the 300000 x 300000 information"):
        mj.fit(never, {"w": np.zeros(300_000)}, None, method="lbfgs", cov="opg")
