"""Bad input and numerical trouble (rows 1-11 and 17-20 of shared/reference/FAULTS.md)."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import mlejax as mj
from mlejax import Status


def normal_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


INIT = {"mu": 0.0, "sigma": mj.Positive(1.0)}
X = np.random.default_rng(0).normal(1.0, 2.0, size=50)


# row 1 -------------------------------------------------------------------------
def test_row1_nan_in_data_names_the_leaf():
    x = X.copy()
    x[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"data\['x'\] \(2 NaN/inf values\)"):
        mj.fit(lambda p, d: normal_ll(p, d["x"]), INIT, {"x": x})
    x[3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        mj.fit(normal_ll, INIT, x)


def test_row1_explicit_mask_is_allowed():
    x = X.copy()
    x[5] = np.nan
    mask = np.isfinite(x)

    def ll(p, d):
        xs = jnp.where(d["mask"], d["x"], 0.0)
        return jnp.sum(jnp.where(d["mask"], stats.norm.logpdf(xs, p["mu"], p["sigma"]), 0.0))

    res = mj.fit(ll, INIT, {"x": x, "mask": mask}, check_finite=False)
    assert res.converged
    np.testing.assert_allclose(res.params["mu"], np.nanmean(x), rtol=1e-10)


# row 2 -------------------------------------------------------------------------
def test_row2_shapes_that_do_not_line_up():
    X2, y = np.ones((100, 3)), np.ones(90)

    def ll(b, d):
        return jnp.sum(d["y"] * (d["X"] @ b))

    with pytest.raises(TypeError) as info:
        mj.fit(ll, jnp.zeros(3), {"X": X2, "y": y})
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "['X']: (100, 3)" in notes and "['y']: (90,)" in notes


# row 3 -------------------------------------------------------------------------
def test_row3_non_scalar_and_non_float_loglik():
    with pytest.raises(TypeError, match=r"shape \(50,\).*jnp.sum"):
        mj.fit(lambda p, x: stats.norm.logpdf(x, p["mu"], p["sigma"]), INIT, X)
    with pytest.raises(TypeError, match="floating-point"):
        mj.fit(lambda p, x: jnp.sum(x > p["mu"]), INIT, X)
    with pytest.raises(TypeError, match="one scalar"):
        mj.fit(lambda p, x: (normal_ll(p, x), 1.0), INIT, X)


def test_row3_errors_also_under_jit_and_vmap():
    bad = lambda p, x: stats.norm.logpdf(x, p["mu"], p["sigma"])  # noqa: E731
    with pytest.raises(TypeError, match="scalar"):
        jax.jit(lambda x: mj.fit(bad, INIT, x).params)(X)
    with pytest.raises(TypeError, match="scalar"):
        jax.vmap(lambda x: mj.fit(bad, INIT, x).params)(np.stack([X, X]))


# row 4 -------------------------------------------------------------------------
class ModelError(Exception):
    pass


def test_row4_user_exception_is_unchanged():
    def ll(p, x):
        raise ModelError("my model is broken")

    with pytest.raises(ModelError, match="my model is broken"):
        mj.fit(ll, INIT, X)


# row 5 -------------------------------------------------------------------------
def test_row5_nonfinite_at_start_is_refused():
    def ll(p, x):
        return jnp.sum(jnp.log(p["mu"]) + 0 * x)  # log of a negative start

    with pytest.raises(ValueError, match="not finite at the starting values"):
        mj.fit(ll, {"mu": -1.0}, X)


# row 6 -------------------------------------------------------------------------
def test_row6_nan_mid_fit_is_rejected_and_recovered():
    k = np.random.default_rng(1).poisson(0.3, size=40)

    def ll(rate, k):  # unconstrained rate: a full Newton step lands at rate < 0 -> NaN
        return jnp.sum(k * jnp.log(rate) - rate)

    res = mj.fit(ll, 5.0, k)
    assert res.converged
    np.testing.assert_allclose(res.params, k.mean(), rtol=1e-10)


def test_row6_unrecoverable_nan_is_reported():
    def ll(x, d):
        return -(x**2) + jnp.where(x == 1.0, 0.0, jnp.nan)

    with pytest.warns(mj.ConvergenceWarning, match="NaN/inf"):
        res = mj.fit(ll, 1.0)
    assert int(res.status) == Status.NONFINITE and not bool(res.converged)


def test_row6_a_scale_collapsing_on_noise_free_data_is_named():
    """A user-written Normal regression on y = X b exactly: sigma runs to 0 and the
    log-likelihood to +inf until a step gives NaN. The report names sigma's collapse
    (not a bare "constrain the parameters"); the coefficients are the exact solution
    (lstsq, the oracle). An ordinary NaN stop (row 6 above) gets no such note."""
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(20), rng.normal(size=20)])
    y = x @ np.array([1.0, 2.0])

    def ll(p, d):
        return jnp.sum(stats.norm.logpdf(d[1], d[0] @ p["b"], p["s"]))

    with pytest.warns(mj.ConvergenceWarning, match=r"s \(1 -> .*\) shrank towards its lower bound"):
        res = mj.fit(ll, {"b": jnp.zeros(2), "s": mj.Positive(1.0)}, (x, y))
    assert int(res.status) == Status.NONFINITE
    np.testing.assert_allclose(res.params["b"], np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-10)
    with pytest.warns(mj.ConvergenceWarning) as seen:
        mj.fit(lambda x, d: -(x**2) + jnp.where(x == 1.0, 0.0, jnp.nan), 1.0)
    assert not any("shrank" in str(w.message) for w in seen)


# rows 7 and 9 ------------------------------------------------------------------
def test_row7_row9_iteration_limit():
    with pytest.warns(mj.ConvergenceWarning, match="iteration limit"):
        res = mj.fit(normal_ll, INIT, X, maxiter=2)
    assert int(res.status) == Status.MAX_ITER and not bool(res.converged)
    assert int(res.n_iter) == 2 and float(res.grad_norm) > 0
    assert "maxiter" in res.message


# row 8 -------------------------------------------------------------------------
def test_row8_precision_loss_is_a_distinct_status():
    # a kink at the optimum: the gradient never gets small, no step improves
    with pytest.warns(mj.ConvergenceWarning, match="precision loss"):
        res = mj.fit(lambda x, d: -jnp.abs(x - 1.0), 0.3)
    assert int(res.status) == Status.PRECISION_LOSS
    assert abs(float(res.params) - 1.0) < 1e-6


# row 10 ------------------------------------------------------------------------
def test_row10_unbounded_likelihood():
    with pytest.warns(mj.ConvergenceWarning, match="without bound"):
        res = mj.fit(lambda x, d: 3.0 * x, 0.0)
    assert int(res.status) == Status.UNBOUNDED


def test_row10_degenerate_normal_is_not_converged():
    with pytest.warns(mj.HessianWarning, match="only 1 observations for 2 parameters"), \
            pytest.warns(mj.ConvergenceWarning):
        res = mj.fit(normal_ll, INIT, np.array([1.5]))
    assert not bool(res.converged)


# row 11 ------------------------------------------------------------------------
def test_row11_saddle_point_is_flagged():
    with pytest.warns(mj.HessianWarning, match="saddle"):
        res = mj.fit(lambda p, d: -p[0] ** 2 + p[1] ** 2 - p[1] ** 4, jnp.zeros(2))
    assert int(res.status) == Status.NOT_MAXIMUM and not bool(res.converged)
    assert bool(res.hessian_not_negdef)
    assert np.all(np.isnan(res.stderr))


# row 17 ------------------------------------------------------------------------
def test_row17_bad_bounds_and_starts():
    with pytest.raises(ValueError, match="lower bound .* not below upper bound"):
        mj.fit(normal_ll, {"mu": mj.Bounded(2.0, 1.0, 1.5), "sigma": mj.Positive(1.0)}, X)
    with pytest.raises(ValueError, match="'mu'.*not strictly below its upper bound"):
        mj.fit(normal_ll, {"mu": mj.Bounded(-1.0, 1.0, 3.0), "sigma": mj.Positive(1.0)}, X)
    with pytest.raises(ValueError, match="'sigma'.*mj.Positive"):
        mj.fit(normal_ll, {"mu": 0.0, "sigma": mj.Positive(-1.0)}, X)
    with pytest.raises(ValueError, match="'mu'.*non-finite"):
        mj.fit(normal_ll, {"mu": np.nan, "sigma": mj.Positive(1.0)}, X)


# row 18 ------------------------------------------------------------------------
def test_row18_constraint_shape_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match="'beta'.*do not broadcast"):
        mj.fit(lambda p, d: -jnp.sum(p["beta"] ** 2),
               {"beta": mj.Bounded(jnp.zeros(2), jnp.ones(2), jnp.full(3, 0.5))})
    with pytest.raises(TypeError, match="'mu'.*number"):
        mj.fit(normal_ll, {"mu": "zero", "sigma": mj.Positive(1.0)}, X)
    with pytest.raises(TypeError, match=r"data\['x'\].*string"):
        mj.fit(normal_ll, INIT, {"x": "abc"})


# row 19 ------------------------------------------------------------------------
def test_row19_integer_starts_and_data():
    k = np.random.default_rng(2).poisson(3.0, size=100)  # int64 data, kept integer
    res = mj.fit(lambda r, k: jnp.sum(k * jnp.log(r) - r), mj.Positive(2), k)
    assert res.params.dtype == jnp.float64
    np.testing.assert_allclose(res.params, k.mean(), rtol=1e-10)
    # integer data can index
    groups = np.repeat(np.arange(4), 25)
    y = np.random.default_rng(3).normal(np.arange(4)[groups], 1.0)
    res = mj.fit(lambda m, d: -0.5 * jnp.sum((d["y"] - m[d["g"]]) ** 2), jnp.zeros(4),
                 {"y": y, "g": groups})
    np.testing.assert_allclose(res.params, [y[groups == j].mean() for j in range(4)], rtol=1e-10)


# row 20 ------------------------------------------------------------------------
def test_row20_float32_standard_errors_warn():
    code = textwrap.dedent(
        """
        import warnings, jax.numpy as jnp, numpy as np
        import mlejax as mj
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mj.fit(lambda p, x: jnp.sum(-0.5 * (x - p) ** 2), 0.0, np.arange(10.0))
        print([str(x.message) for x in w if issubclass(x.category, mj.PrecisionWarning)])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"JAX_ENABLE_X64": "0", "PATH": "/usr/bin:/bin",
                              "JAX_PLATFORMS": "cpu"})
    assert "float32" in out.stdout and "jax_enable_x64" in out.stdout


# options --------------------------------------------------------------------------
def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="method='bfgs'"):
        mj.fit(normal_ll, INIT, X, method="bfgs")
    with pytest.raises(TypeError, match="method has type int"):
        mj.fit(normal_ll, INIT, X, method=3)
    with pytest.raises(ValueError, match="maxiter"):
        mj.fit(normal_ll, INIT, X, maxiter=-1)
    with pytest.raises(ValueError, match="tol"):
        mj.fit(normal_ll, INIT, X, tol=-1.0)
    with pytest.raises(ValueError, match="cov='hessian'"):
        mj.fit(normal_ll, INIT, X, cov="hessian")
    with pytest.raises(TypeError, match="loglik must be a function"):
        mj.fit(3.0, INIT, X)
    with pytest.raises(ValueError, match="no parameters"):
        mj.fit(normal_ll, {}, X)


# rows 10 and 21 (generic fits) ------------------------------------------------------
def test_supremum_at_infinity_is_not_a_success():
    """All-zero Bernoulli data on the logit scale, and a perfectly separated logistic
    regression: the gradient vanishes only as the estimate runs off to infinity."""

    def ll(p, y):
        return jnp.sum(y * p["logit"] - jnp.logaddexp(0.0, p["logit"]))

    with pytest.warns(mj.ConvergenceWarning, match="drifts towards infinity"):
        res = mj.fit(ll, {"logit": 0.0}, np.zeros(7))
    assert int(res.status) == Status.DIVERGING and not bool(res.converged)
    assert np.isnan(res.stderr["logit"])

    x = np.linspace(-2, 2, 20)
    y = (x > 0.1).astype(float)

    def logit_ll(b, d):
        eta = b[0] + b[1] * d["x"]
        return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))

    with pytest.warns(mj.ConvergenceWarning):
        res = mj.fit(logit_ll, jnp.zeros(2), {"x": x, "y": y})
    assert not bool(res.converged)
