"""Issue 11: results a researcher can use directly, and the items not covered by the
fault grid (tests/test_faults_grid.py) or tests/test_observations.py. Oracles:
closed forms, statsmodels."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from jax.scipy import stats

import mlejax as mj

RNG = np.random.default_rng(7)
X = RNG.normal(5.0, 2.0, size=40)


def normal_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def _fit(init=None, data=X, ll=normal_ll, **kw):
    init = {"mu": 0.0, "sigma": mj.Positive(1.0)} if init is None else init
    return mj.fit(ll, init, data, **kw)


# item 2: a profile end is infinite only if the deviance stays below the cut-off ------------
def step_ll(p, x):
    return normal_ll(p, x) - 10.0 * (p["mu"] > 5.5)


def test_profile_end_at_a_jump_is_finite_and_flagged():
    x = X - X.mean() + 5.3  # the smooth interval (4.68, 5.92) straddles the step at 5.5
    res = _fit(ll=step_ll, data=x)
    with pytest.warns(mj.HessianWarning, match="jumps across the cut-off"):
        ci = res.conf_int(method="profile")
    lo, hi = ci["mu"]
    smooth = _fit(data=x).conf_int(method="profile")["mu"]
    assert lo == pytest.approx(smooth[0], rel=1e-8)  # the lower end does not see the step
    assert hi == pytest.approx(5.5, abs=1e-8) and hi < smooth[1]


# item 3: lrt refuses what it cannot test --------------------------------------------------
def test_lrt_checks_nesting_and_data():
    full = _fit()
    null = _fit({"mu": mj.Fixed(5.0), "sigma": mj.Positive(1.0)})
    t = mj.lrt(full, null)  # same loglik, mj.Fixed: verified nested
    # closed form: 2 (l_full - l_null) = n log(s0^2 / s^2) for the Normal
    s2, s02 = X.var(), np.mean((X - 5.0) ** 2)
    np.testing.assert_allclose(t.statistic, len(X) * np.log(s02 / s2), rtol=1e-8)
    with pytest.raises(ValueError, match="different data"):
        mj.lrt(full, _fit({"mu": mj.Fixed(5.0), "sigma": mj.Positive(1.0)}, data=X + 0.5))
    laplace = lambda p, x: jnp.sum(stats.laplace.logpdf(x, p["mu"], p["sigma"]))  # noqa: E731
    with pytest.raises(ValueError, match="compare AIC"):
        mj.lrt(full, _fit({"mu": mj.Fixed(5.0), "sigma": mj.Positive(1.0)}, ll=laplace))


# item 4: a noisy likelihood is NOT_SMOOTH, the smooth one is untouched ----------------------
def test_noisy_likelihood_is_not_a_success():
    with pytest.warns(mj.HessianWarning, match="not smooth"):
        noisy = _fit(ll=lambda p, x: normal_ll(p, x) + 1e-3 * jnp.sin(1e3 * p["mu"]))
    assert noisy.status == mj.Status.NOT_SMOOTH and not noisy.converged
    assert noisy.rough_params == ("mu",) and np.isnan(noisy.stderr["mu"])
    smooth = _fit()
    assert smooth.converged and smooth.rough_params == ()
    np.testing.assert_allclose(smooth.stderr["mu"], X.std() / np.sqrt(len(X)), rtol=1e-6)


def _line_ll(p, d):
    return jnp.sum(stats.norm.logpdf(d["y"], p["a"] + p["b"] * d["x"], 1.0))


LINE = {"x": RNG.uniform(10.0, 12.0, 60)}  # far from 0: a and b strongly correlated
LINE["y"] = 1.0 + 0.5 * LINE["x"] + RNG.normal(size=60)


@pytest.mark.parametrize("rough", ["a", "b"])
def test_noise_in_one_of_two_correlated_parameters_is_named(rough):
    # the check first probes all parameters at once (two gradients) and only then
    # each one; a ripple in one parameter alone must still be found and named
    # a ripple whose curvature is ~130x the parameter's own (the diagonal of X'X)
    scale = {"a": 1.0 / np.sqrt(len(LINE["x"])), "b": 1.0 / np.sqrt(np.sum(LINE["x"] ** 2))}[rough]
    ripple = lambda p, d: _line_ll(p, d) + 2e-3 * jnp.sin(258.0 * p[rough] / scale)  # noqa: E731
    ols = sm.OLS(LINE["y"], sm.add_constant(LINE["x"])).fit()
    with pytest.warns(mj.HessianWarning, match="not smooth"):
        res = mj.fit(ripple, {"a": 0.0, "b": 0.0}, LINE)
    assert res.status == mj.Status.NOT_SMOOTH and res.rough_params == (rough,)
    clean = mj.fit(_line_ll, {"a": 0.0, "b": 0.0}, LINE)
    assert clean.converged and clean.rough_params == ()
    np.testing.assert_allclose([clean.params["a"], clean.params["b"]], ols.params, rtol=1e-8)


# item 5: an MLE at infinity in glm -------------------------------------------------------------
def test_degenerate_gamma_is_diverging_like_separation():
    x = np.column_stack([np.ones(30), RNG.normal(size=30)])
    with pytest.warns(mj.ConvergenceWarning, match="fits every response exactly"):
        res = mj.glm(np.full(30, 2.0), x, "gamma")
    assert res.status == mj.Status.DIVERGING and np.all(np.isnan(res.stderr["beta"]))
    with pytest.warns(mj.PerfectSeparationWarning):
        sep = mj.glm((x[:, 1] > 0).astype(float), x, "logit")
    assert sep.status == res.status


def test_noise_free_linear_regression_is_diverging_with_its_cause():
    """y = X beta exactly: sigma's MLE is 0 and the Gaussian log-likelihood is unbounded.
    The coefficients are the exact solution (numpy's lstsq, the oracle); the status is
    DIVERGING as for the other zero-variance responses, with the cause named (not a NaN
    step); with noise 1e-9 of the signal it is an ordinary fit equal to statsmodels' OLS."""
    x = np.column_stack([np.ones(20), RNG.normal(size=20)])
    y = x @ np.array([1.0, 2.0])
    with pytest.warns(mj.ConvergenceWarning, match="fits every response exactly") as seen:
        res = mj.glm(y, x, "linear")
    assert len(seen) == 1
    assert res.status == mj.Status.DIVERGING and np.all(np.isnan(res.stderr["beta"]))
    np.testing.assert_allclose(res.params["beta"], np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-12)
    noisy = y + np.random.default_rng(3).normal(0, 1e-9, 20)
    ok = mj.glm(noisy, x, "linear")
    ols = sm.OLS(noisy, x).fit()
    assert ok.status == mj.Status.SUCCESS
    np.testing.assert_allclose(ok.params["beta"], ols.params, rtol=1e-12)
    np.testing.assert_allclose(ok.extras["stderr_unbiased"], ols.bse, rtol=1e-6)


# item 7: the derivative that is not finite is named -------------------------------------------
def test_nan_second_derivative_is_named():
    xo = RNG.normal(size=100)
    y = np.digitize(0.8 * xo + RNG.normal(size=100), [-0.5, 0.7])

    def ll(p, d):
        y, x = d
        cuts = jnp.concatenate([jnp.array([-jnp.inf]), p["c"], jnp.array([jnp.inf])])
        eta = p["b"] * x
        return jnp.sum(jnp.log(stats.norm.cdf(cuts[y + 1] - eta) - stats.norm.cdf(cuts[y] - eta)))

    with pytest.warns(mj.ConvergenceWarning):
        res = mj.fit(ll, {"b": 0.0, "c": jnp.array([-1.0, 1.0])}, (y, xo))
    assert res.status == mj.Status.NONFINITE
    assert "second derivatives (the Hessian) are NaN/inf in the rows of b" in res.message
    assert "infinite constant" in res.message and "constrain" not in res.message.split("Hessian")[0].lower()


# item 10: plain mistakes get messages that name the fix ----------------------------------------
def test_plain_mistakes_name_the_fix():
    x = np.column_stack([np.ones(3), RNG.normal(size=(3, 4))])
    with pytest.raises(ValueError, match="more coefficients than observations"):
        mj.glm(np.ones(3), x, "linear")
    with pytest.raises(ValueError, match=r"x has shape \(40, 2\).*1-d array"):
        mj.fit_dist(mj.dist.Normal(), RNG.normal(size=(40, 2)))
    with pytest.raises(ValueError, match="ragged"):
        mj.em_batch(mj.GaussianMixture(2), [np.zeros((5, 2)), np.zeros((6, 2))])
    with pytest.raises(TypeError, match="complex"):
        _fit(data=X.astype(complex))
    stacked = jax.vmap(lambda x: _fit(data=x))(np.stack([X, X[::-1] + 1.0]))
    with pytest.raises(ValueError, match="stack of fits.*fit_batch"):
        stacked.summary()
    d = stacked.delta(lambda p: p["sigma"] ** 2)  # closed form: se(s^2) = s^2 sqrt(2/n)
    np.testing.assert_allclose(np.asarray(d.stderr), X.var() * np.sqrt(2 / len(X)) * np.ones(2), rtol=1e-6)
    # a zero weight drops its point in curve_fit
    f = lambda t, x: t["a"] * x  # noqa: E731
    xs = np.arange(1.0, 8.0)
    ys = 2.0 * xs + RNG.normal(scale=0.1, size=7)
    ys[-1] = 1e3
    w = np.r_[np.ones(6), 0.0]
    one = mj.curve_fit(f, xs, ys, {"a": 1.0}, weights=w)
    np.testing.assert_allclose(one.params["a"], xs[:6] @ ys[:6] / (xs[:6] @ xs[:6]), rtol=1e-9)
    assert one.nobs == 6


# item 11: types ----------------------------------------------------------------------------------
def test_status_and_intervals_are_plain_python():
    res = _fit()
    assert type(res.status) is mj.Status and res.status is mj.Status.SUCCESS
    lo, hi = res.conf_int()["mu"]
    assert type(lo) is float and type(hi) is float
    plo, phi = res.conf_int(method="profile")["sigma"]
    assert type(plo) is float and plo < float(res.params["sigma"]) < phi
    vec = mj.fit(lambda b, x: -0.5 * jnp.sum((x[:, None] - b) ** 2), jnp.zeros(2), X)
    lo, hi = vec.conf_int()
    assert isinstance(lo, np.ndarray) and lo.shape == (2,)


# item 12: names are kept ------------------------------------------------------------------------
def test_names_in_user_order_and_from_dataframes():
    res = _fit({"sigma": mj.Positive(1.0), "mu": 0.0})
    assert list(res.to_dataframe().index) == ["sigma", "mu"]
    assert list(res.to_dict()["params"]) == ["sigma", "mu"]
    assert res.summary().index("sigma ") < res.summary().index("mu ")
    xdf = pd.DataFrame({"const": np.ones(40), "dose": RNG.normal(size=40)})
    y = (xdf["dose"] + RNG.logistic(size=40) > 0).astype(float).to_numpy()
    g = mj.glm(y, xdf, "logit")
    assert g.names == ("const", "dose")
    sm_fit = sm.Logit(y, xdf).fit(disp=0)
    np.testing.assert_allclose(np.asarray(g.params["beta"]), sm_fit.params.to_numpy(), rtol=1e-6)
    # a DataFrame as data arrives as named columns; a list of numbers is one array
    df = pd.DataFrame({"x": X, "g": np.arange(40) % 2})
    by_df = mj.fit(lambda p, d: normal_ll(p, d["x"]), {"mu": 0.0, "sigma": mj.Positive(1.0)}, df)
    np.testing.assert_allclose(by_df.params["mu"], X.mean(), rtol=1e-10)
    by_list = _fit(data=[float(v) for v in X])
    np.testing.assert_allclose(by_list.params["sigma"], X.std(), rtol=1e-8)


# item 13: every result type has summary(), HTML and to_dataframe() -----------------------------
def test_every_result_type_renders():
    res = _fit()
    x2 = np.concatenate([RNG.normal(0, 1, (30, 2)), RNG.normal(5, 1, (30, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objs = {
            "batch": mj.fit_batch(normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, RNG.normal(size=(3, 40))),
            "bootstrap": mj.bootstrap(res, jax.random.key(0), 20),
            "profile": res.profile("mu", np.linspace(4.0, 6.0, 3)),
            "mixture": mj.em(mj.GaussianMixture(2), x2, key=jax.random.key(0)),
            "selection": mj.select_components(mj.GaussianMixture(1), x2, n_components=[1, 2], key=jax.random.key(0)),
            "batch_em": mj.em_batch(mj.GaussianMixture(2), np.stack([x2, x2[::-1]]), key=jax.random.key(0)),
        }
    rows = {"batch": 3, "bootstrap": 2, "profile": 3, "mixture": 2 + 4 + 8, "selection": 2, "batch_em": 2}
    for name, obj in objs.items():
        assert isinstance(obj.summary(), str) and "<table>" in obj._repr_html_(), name
        df = obj.to_dataframe()
        assert isinstance(df, pd.DataFrame) and len(df) == rows[name], name
    prof = objs["profile"].to_dataframe()
    np.testing.assert_allclose(prof["loglik"].to_numpy(), np.asarray(objs["profile"].loglik))


# item 15: binomial with trials against statsmodels' GLM Binomial ---------------------------------
@pytest.mark.parametrize("seed", [15, 16])
def test_binomial_with_trials_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)  # its own data, whatever ran before in this worker
    n = rng.integers(1, 15, 35)
    x = np.column_stack([np.ones(35), rng.normal(size=35)])
    k = rng.binomial(n, 1 / (1 + np.exp(-(x @ [0.3, -0.7]))))
    res = mj.glm(k, x, "binomial", trials=n)
    # statsmodels' IRLS converged tightly: at its default tol (1e-8 on the deviance) its
    # bse can be 7e-6 off its own converged value on such data
    theirs = sm.GLM(np.column_stack([k, n - k]), x, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(np.asarray(res.params["beta"]), theirs.params, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(res.stderr["beta"]), theirs.bse, rtol=1e-6)
    np.testing.assert_allclose(float(res.loglik), theirs.llf, rtol=1e-10)
    np.testing.assert_allclose(float(res.aic), theirs.aic, rtol=1e-10)
    np.testing.assert_allclose(float(res.extras["deviance"]), theirs.deviance, rtol=1e-8)
    assert res.nobs == theirs.nobs == 35
    # nobs never counts rows of weight 0
    w = np.r_[np.ones(30), np.zeros(5)]
    assert mj.glm(k, x, "binomial", trials=n, weights=w).nobs == 30


def test_series_start_keeps_its_labels():
    start = pd.Series([0.0, 1.0], index=["mu", "log_sigma"])
    res = mj.fit(lambda p, x: jnp.sum(stats.norm.logpdf(x, p["mu"], jnp.exp(p["log_sigma"]))), start, X)
    assert set(res.names) == {"mu", "log_sigma"} and list(res.to_dataframe().index) == ["mu", "log_sigma"]
    np.testing.assert_allclose(res.params["mu"], X.mean(), rtol=1e-10)
