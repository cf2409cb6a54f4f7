"""mj.bootstrap: replicates are fits of resampled/simulated data, bootstrap SEs
agree with the observed-information ones, the intervals are their definitions (their
Monte-Carlo coverage is a slow check: benchmarks/slow_checks)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats
from scipy.special import ndtr, ndtri

import mlejax as mj

INIT = {"mu": 0.0, "sigma": mj.Positive(1.0)}


def norm_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def norm_sampler(key, p, x):
    return p["mu"] + p["sigma"] * jax.random.normal(key, x.shape, x.dtype)


def _flat(tree):
    return np.array([float(tree["mu"]), float(tree["sigma"])])


X = np.random.default_rng(0).normal(1.0, 2.0, 200)
FIT = mj.fit(norm_ll, INIT, X)
N_BOOT = 2000
KEY = jax.random.key(1)


@pytest.fixture(scope="module")
def boots():
    """One nonparametric and one parametric bootstrap shared by the tests (compiled once)."""
    return {
        "nonparametric": mj.bootstrap(FIT, KEY, N_BOOT),
        "parametric": mj.bootstrap(FIT, KEY, N_BOOT, kind="parametric", sampler=norm_sampler),
    }


def test_replicates_are_fits_of_the_resampled_and_simulated_data(boots):
    b, bp = boots["nonparametric"], boots["parametric"]
    keys = jax.random.split(KEY, N_BOOT)
    start = {"mu": FIT.params["mu"], "sigma": mj.Positive(FIT.params["sigma"])}
    for j in (0, N_BOOT - 1):
        idx = np.asarray(jax.random.randint(keys[j], (200,), 0, 200))
        xb = X[idx]
        # oracles: a single fit of the resampled data from the estimate, and its closed form
        one = mj.fit(norm_ll, start, xb)
        np.testing.assert_allclose(float(b.replicates["mu"][j]), one.params["mu"], rtol=1e-10)
        np.testing.assert_allclose(float(b.replicates["sigma"][j]), one.params["sigma"],
                                   rtol=1e-10)
        np.testing.assert_allclose(float(b.replicates["mu"][j]), xb.mean(), rtol=1e-8)
        np.testing.assert_allclose(float(b.replicates["sigma"][j]), xb.std(), rtol=1e-8)
        xs = np.asarray(norm_sampler(keys[j], FIT.params, jnp.asarray(X)))
        one = mj.fit(norm_ll, start, xs)
        np.testing.assert_allclose(float(bp.replicates["mu"][j]), one.params["mu"], rtol=1e-10)
        np.testing.assert_allclose(float(bp.replicates["sigma"][j]), xs.std(), rtol=1e-8)
    assert b.n_failed == 0 and bp.n_failed == 0 and bp.kind == "parametric"


@pytest.mark.parametrize("kind", ["nonparametric", "parametric"])
def test_bootstrap_se_agrees_with_observed_information(boots, kind):
    b = boots[kind]
    se_boot, se_obs = _flat(b.stderr), _flat(FIT.stderr)
    # Monte-Carlo error of a standard deviation from n_boot draws: se / sqrt(2 n_boot),
    # 1.6% here; for sigma the nonparametric bootstrap also carries the sample kurtosis.
    mc = 1.0 / np.sqrt(2 * N_BOOT)
    assert abs(se_boot[0] / se_obs[0] - 1) < 4 * mc
    assert abs(se_boot[1] / se_obs[1] - 1) < (4 * mc if kind == "parametric" else 0.15)
    np.testing.assert_allclose(np.sqrt(np.diag(np.asarray(b.cov))), se_boot, rtol=1e-12)
    # the mean is unbiased: its bootstrap bias is Monte-Carlo noise
    assert abs(_flat(b.bias)[0]) < 4 * se_obs[0] / np.sqrt(N_BOOT)


def test_percentile_basic_and_bca_intervals_match_their_definitions(boots):
    b = boots["nonparametric"]
    reps = np.column_stack([np.asarray(b.replicates["mu"]), np.asarray(b.replicates["sigma"])])
    est = _flat(FIT.params)
    q = np.quantile(reps, [0.05, 0.95], axis=0)
    pct = b.conf_int(0.90)
    np.testing.assert_allclose([pct["mu"][0], pct["sigma"][0]], q[0], rtol=1e-12)
    np.testing.assert_allclose([pct["mu"][1], pct["sigma"][1]], q[1], rtol=1e-12)
    basic = b.conf_int(0.90, method="basic")
    np.testing.assert_allclose([basic["mu"][0], basic["sigma"][0]], 2 * est - q[1], rtol=1e-12)
    np.testing.assert_allclose([basic["mu"][1], basic["sigma"][1]], 2 * est - q[0], rtol=1e-12)
    # BCa from its definition: z0 from the replicates, acceleration from the jackknife of
    # the closed-form estimators (mean, root mean squared deviation)
    n = X.shape[0]
    loo = np.array([np.delete(X, i) for i in range(n)])
    jack = np.column_stack([loo.mean(axis=1), loo.std(axis=1)])
    d = jack.mean(axis=0) - jack
    a = np.sum(d**3, axis=0) / (6 * np.sum(d**2, axis=0) ** 1.5)
    np.testing.assert_allclose(b._acceleration, a, rtol=1e-6, atol=1e-12)
    z0 = ndtri(np.mean(reps < est, axis=0))
    z = ndtri(np.array([0.05, 0.95]))
    bca = b.conf_int(0.90, method="bca")
    for j, name in enumerate(["mu", "sigma"]):
        adj = ndtr(z0[j] + (z0[j] + z) / (1 - a[j] * (z0[j] + z)))
        np.testing.assert_allclose(bca[name], np.quantile(reps[:, j], adj), rtol=1e-10)
    assert f"nonparametric bootstrap: {N_BOOT} replicates, {N_BOOT} converged" in str(b)
    with pytest.raises(ValueError, match="method"):
        b.conf_int(method="studentized")


def test_failed_replicates_are_counted_and_left_out():
    # three observations: a resample of one value repeated three times (1 in 9) has
    # sigma_hat = 0, which no fit can reach; exactly those replicates must fail.
    x = np.array([0.3, 1.2, 2.0])
    traces = []

    def ll(p, x):
        traces.append(1)  # runs only when JAX traces (compiles) the function
        return norm_ll(p, x)

    fit = mj.fit(ll, INIT, x)
    key, n_boot = jax.random.key(0), 300
    with pytest.warns(mj.ConvergenceWarning, match="bootstrap fits did not converge"):
        b = mj.bootstrap(fit, key, n_boot)
    n_traced = len(traces)
    with pytest.warns(mj.ConvergenceWarning):  # a second call: new key, no recompilation
        mj.bootstrap(fit, jax.random.key(5), n_boot)
    assert len(traces) == n_traced
    keys = jax.random.split(key, n_boot)
    idx = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (3,), 0, 3))(keys))  # each key's resample
    degenerate = np.all(idx == idx[:, :1], axis=1)
    conv = np.asarray(b.converged)
    np.testing.assert_array_equal(conv, ~degenerate)
    assert b.n_failed == int(degenerate.sum()) > 0
    ok = np.asarray(b.replicates["sigma"])[conv]
    np.testing.assert_allclose(float(b.stderr["sigma"]), ok.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(ok, x[idx[conv]].std(axis=1), rtol=1e-8)
    assert "Failed:" in b.summary()


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="key"):
        mj.bootstrap(FIT, 0, 10)
    with pytest.raises(ValueError, match="sampler"):
        mj.bootstrap(FIT, jax.random.key(0), 10, kind="parametric")
    with pytest.raises(ValueError, match="kind"):
        mj.bootstrap(FIT, jax.random.key(0), 10, kind="jackknife")
    with pytest.raises(ValueError, match="n_boot"):
        mj.bootstrap(FIT, jax.random.key(0), 1)
    with pytest.raises(ValueError, match="shape"):
        mj.bootstrap(FIT, jax.random.key(0), 10, kind="parametric",
                     sampler=lambda k, p, x: jax.random.normal(k, (3,)))
    with pytest.raises(TypeError, match="FitResult"):
        mj.bootstrap({"mu": 1.0}, jax.random.key(0), 10)
