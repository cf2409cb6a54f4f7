"""Hessian diagnostics (FAULTS.md rows 12-16 and 29): each flag is triggered by a case
built to cause it, the message names the cause, and a single fit warns."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

import mlejax as mj

RNG = np.random.default_rng(0)
X = RNG.normal(1.0, 2.0, size=50)


def _fit_quiet(*args, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = mj.fit(*args, **kw)
    return res, w


def _all_nan(tree):
    return all(bool(jnp.all(jnp.isnan(a))) for a in jax.tree_util.tree_leaves(tree))


def ll_diff(p, x):  # only a - b enters: a + b is not identified
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["a"] - p["b"], 2.0))


def test_row12_singular_hessian_names_the_combination():
    res, w = _fit_quiet(ll_diff, {"a": 0.0, "b": 0.0}, X)
    assert bool(res.not_identified) and not bool(res.converged)
    assert res.status == mj.Status.NOT_IDENTIFIED
    # the undetermined direction is a + b (equal weights on a and b)
    v = np.asarray(res.null_vector)
    np.testing.assert_allclose(np.abs(v), [2**-0.5, 2**-0.5], rtol=1e-6)
    assert v[0] * v[1] > 0
    assert "0.707*a + 0.707*b" in res.message
    assert "standard errors are NaN" in res.message
    assert _all_nan(res.stderr) and np.all(np.isnan(np.asarray(res.cov)))
    # the estimate itself is returned and fits the identified combination
    np.testing.assert_allclose(float(res.params["a"] - res.params["b"]), X.mean(), rtol=1e-8)
    assert any(issubclass(x.category, mj.HessianWarning) and "a + 0.707*b" in str(x.message) for x in w)
    assert "Flags: not identified" in res.summary()


def test_row12_pinv_fallback_is_labelled_and_right_for_identified_combinations():
    res, _ = _fit_quiet(ll_diff, {"a": 0.0, "b": 0.0}, X)
    fb = res.with_cov("pinv")
    assert fb.cov_type == "pinv" and "Covariance:" in fb.summary() and "pinv" in fb.summary()
    assert "pseudo-inverse fallback" in fb.message
    # delta method for the identified a - b: sigma / sqrt(n) (closed form)
    d = fb.delta(lambda p: p["a"] - p["b"])
    np.testing.assert_allclose(float(d.stderr), 2.0 / np.sqrt(X.size), rtol=1e-8)
    # minimum-norm generalised inverse of I = (n/4)[[1,-1],[-1,1]]
    np.testing.assert_allclose(np.asarray(fb.cov), np.array([[1, -1], [-1, 1]]) / X.size, rtol=1e-8)


def test_row13_flat_likelihood():
    def ll(p, x):  # c does not enter at all
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], 2.0)) + 0.0 * p["c"]

    res, w = _fit_quiet(ll, {"mu": 0.0, "c": 1.0}, X)
    assert res.status == mj.Status.NOT_IDENTIFIED and bool(res.not_identified)
    assert "the combination 1*c" in res.message
    assert _all_nan(res.stderr)
    assert any(issubclass(x.category, mj.HessianWarning) for x in w)
    # profile intervals stay honest: c is not bounded by the data at all, while mu's
    # interval is the exact one (quadratic log-likelihood: mean +- z * 2 / sqrt(n))
    ci = res.conf_int(method="profile")
    assert float(ci["c"][0]) == -np.inf and float(ci["c"][1]) == np.inf
    half = 1.959963984540054 * 2.0 / np.sqrt(X.size)
    np.testing.assert_allclose([float(ci["mu"][0]), float(ci["mu"][1])],
                               [X.mean() - half, X.mean() + half], rtol=1e-8)


def test_row11_fit_ending_at_a_saddle():
    def ll(p, x):  # (a, b) = (0, mean(x)) is stationary: a minimum in a, a maximum in b
        return -((p["a"] ** 2 - 1.0) ** 2) - jnp.sum((p["b"] - x) ** 2)

    res, w = _fit_quiet(ll, {"a": 0.0, "b": float(X.mean())}, X)
    assert res.status == mj.Status.NOT_MAXIMUM and bool(res.hessian_not_negdef)
    assert not bool(res.converged)
    assert "not a maximum" in res.message and "saddle" in res.message
    assert _all_nan(res.stderr)
    assert any(issubclass(x.category, mj.HessianWarning) and "saddle" in str(x.message) for x in w)
    assert "Hessian not negative definite" in res.summary()
    # the pinv fallback inverts the negative eigenvalue: that variance is negative -> NaN SE
    fb = res.with_cov("pinv")
    assert np.isnan(float(fb.stderr["a"])) and np.isfinite(float(fb.stderr["b"]))


def test_row14_ill_conditioned_reports_condition_number():
    rng = np.random.default_rng(2)
    x1 = rng.normal(size=200)
    x2 = x1 + 1e-4 * rng.normal(size=200)  # nearly collinear covariates
    y = x1 + rng.normal(size=200)

    def ll(p, d):
        return jnp.sum(jax.scipy.stats.norm.logpdf(d[2], p["b"][0] * d[0] + p["b"][1] * d[1], 1.0))

    res, w = _fit_quiet(ll, {"b": jnp.zeros(2)}, (x1, x2, y))
    assert bool(res.converged) and bool(res.ill_conditioned) and not bool(res.not_identified)
    # oracle: condition number of the correlation-scaled X'X computed with numpy
    xx = np.column_stack([x1, x2])
    info = xx.T @ xx
    dd = np.sqrt(np.diag(info))
    cond = np.linalg.cond(info / np.outer(dd, dd))
    np.testing.assert_allclose(float(res.condition_number), cond, rtol=1e-4)
    assert cond > 1e8
    assert f"condition number {cond:.3g}" in res.message
    assert np.all(np.isfinite(np.asarray(res.stderr["b"])))  # still computed, but flagged
    assert any(issubclass(x.category, mj.HessianWarning) and "condition number" in str(x.message) for x in w)
    assert "Flags: ill-conditioned" in res.summary()


def test_row15_plateau_is_not_a_silent_success():
    def ll(p, x):  # flat for a < 5: the gradient is exactly zero at the start
        return -jax.nn.relu(p["a"] - 5.0) ** 2 + 0.0 * jnp.sum(x)

    res, w = _fit_quiet(ll, {"a": 0.0}, X)
    assert not bool(res.converged)
    assert res.status == mj.Status.NOT_IDENTIFIED
    assert "1*a" in res.message
    assert any(issubclass(x.category, mj.HessianWarning) for x in w)


def test_row16_parameter_at_bound():
    def ll(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    # mu constrained to be >= 0 while the data have a negative mean: the MLE is mu = 0
    res, w = _fit_quiet(ll, {"mu": mj.Bounded(0.0, jnp.inf, 1.0), "sigma": mj.Positive(1.0)}, -X)
    assert float(res.params["mu"]) < 1e-6
    assert bool(res.at_bound)
    np.testing.assert_array_equal(np.asarray(res.params_at_bound), [True, False])
    assert "mu at or near a bound" in res.message and "profile" in res.message
    assert any(issubclass(x.category, mj.HessianWarning) and "mu at or near a bound" in str(x.message) for x in w)
    assert "Flags: parameter at a bound" in res.summary()
    # the profile interval respects the bound; the Wald one crosses it
    lo, hi = res.conf_int(method="profile")["mu"]
    wlo, _ = res.conf_int()["mu"]
    assert float(lo) == 0.0 and float(hi) > 0.0
    assert float(wlo) < 0.0


def test_row29_fewer_observations_than_parameters():
    rng = np.random.default_rng(2)
    data = {"X": rng.normal(size=(2, 3)), "y": rng.normal(size=2)}

    def ll(p, d):
        return jnp.sum(jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], 1.0))

    res, w = _fit_quiet(ll, {"b": jnp.zeros(3)}, data)
    assert res.nobs == 2 and res.nparams == 3
    assert bool(res.not_identified) and _all_nan(res.stderr)
    assert "only 2 observations for 3 parameters" in res.message
    msgs = [str(x.message) for x in w if issubclass(x.category, mj.HessianWarning)]
    assert any("only 2 observations for 3 parameters" in m for m in msgs)


def test_well_posed_fit_raises_no_flag():
    def ll(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = mj.fit(ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, X)
    assert bool(res.converged)
    assert not (bool(res.not_identified) or bool(res.hessian_not_negdef) or bool(res.ill_conditioned))
    assert not bool(res.at_bound)
    assert "Flags: none" in res.summary()


def test_flag_docstrings_list_causes_and_fixes():
    doc = mj.FitResult.__doc__
    for flag in ("hessian_not_negdef", "not_identified", "ill_conditioned", "params_at_bound"):
        block = doc.split(flag + ":", 1)[1].split("\n        ", 1)[1][:600]
        assert "Causes" in block and "Fix" in block, flag
