"""fit_batch: equal to a loop of single fits (and to vmap of mj.fit), failed fits
masked, chunking, no recompilation, input validation."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import mlejax as mj
import mlejax.backends._batch as batch_mod
from mlejax import Status

TOL = dict(rtol=1e-10, atol=1e-12)


def norm_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


INIT = {"mu": 0.0, "sigma": mj.Positive(1.0)}


def moments(x):
    return {"mu": jnp.mean(x), "sigma": mj.Positive(jnp.std(x))}


def _datasets(b=8, n=30, seed=0):
    # one shape (8 datasets of 30) for most tests: the batch compiles once for all of them
    rng = np.random.default_rng(seed)
    return rng.normal(rng.uniform(-3, 3, (b, 1)), rng.uniform(0.5, 4, (b, 1)), (b, n))


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _single(init, x, **kw):
    """The oracle: one mj.fit; statuses that make a single fit raise are returned as such."""
    try:
        return _quiet(mj.fit, norm_ll, init, x, **kw)
    except ValueError as e:
        msg = str(e)
        return Status.NONFINITE_DATA if "NaN or inf" in msg else Status.NONFINITE_START


def _assert_fit_equal(one, single):
    assert int(one.status) == int(single.status)
    assert bool(one.converged) == bool(single.converged)
    assert int(one.n_iter) == int(single.n_iter)
    for a, b in [
        (one.params, single.params),
        (one.stderr, single.stderr),
        (one.cov, single.cov),
        (one.information, single.information),
        (one.loglik, single.loglik),
    ]:
        jax.tree_util.tree_map(
            lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), **TOL), a, b
        )


def test_batch_equals_loop_of_single_fits_and_closed_form():
    x = _datasets()
    res = mj.fit_batch(norm_ll, INIT, x)
    assert isinstance(res, mj.BatchFitResult) and len(res) == 8
    assert np.all(np.asarray(res.converged))
    for i in range(len(res)):
        _assert_fit_equal(res[i], mj.fit(norm_ll, INIT, x[i]))
    # closed form: mean, root mean squared deviation, sigma/sqrt(n), sigma/sqrt(2n)
    n = x.shape[1]
    sig = x.std(axis=1)
    np.testing.assert_allclose(res.params["mu"], x.mean(axis=1), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.params["sigma"], sig, rtol=1e-8)
    np.testing.assert_allclose(res.stderr["mu"], sig / np.sqrt(n), rtol=1e-8)
    np.testing.assert_allclose(res.stderr["sigma"], sig / np.sqrt(2 * n), rtol=1e-8)


def test_bad_datasets_fail_alone_and_the_rest_are_correct():
    x = _datasets(b=8)
    x[2] = 1.5  # all identical: the MLE of sigma is 0 (not attainable)
    x[5, 4] = np.nan  # NaN data
    # moments start: sigma = std = 0 for the identical dataset -> non-finite start
    with pytest.warns(mj.ConvergenceWarning, match="2 of 8 fits did not converge"):
        res = mj.fit_batch(norm_ll, None, x, init_fn=moments)
    status = np.asarray(res.status)
    assert status[2] == Status.NONFINITE_START
    assert status[5] == Status.NONFINITE_DATA
    good = [i for i in range(8) if i not in (2, 5)]
    assert np.all(status[good] == Status.SUCCESS)
    assert np.asarray(res.converged).tolist() == [i in good for i in range(8)]
    assert res.status_counts() == {"SUCCESS": 6, "NONFINITE_START": 1, "NONFINITE_DATA": 1}
    for i in good:
        _assert_fit_equal(res[i], mj.fit(norm_ll, moments(x[i]), x[i]))
    # a single fit refuses both datasets at call time (the batch reports them instead)
    for i in (2, 5):
        with pytest.raises(ValueError, match="not finite|non-finite|NaN|strictly above"):
            mj.fit(norm_ll, moments(x[i]), x[i])
    np.testing.assert_allclose(np.asarray(res.params["sigma"])[good], x[good].std(axis=1), rtol=1e-8)
    # the failed fits' standard errors are not finite numbers one could trust
    assert not np.isfinite(np.asarray(res.stderr["sigma"])[2])
    text = res.summary()
    assert "Converged: 6 of 8" in text and "NONFINITE_START 1" in text


def test_identical_values_with_a_shared_start_do_not_converge_and_match_single_fit():
    x = _datasets()
    x[1] = -0.7
    res = _quiet(mj.fit_batch, norm_ll, INIT, x)
    st = np.asarray(res.status)
    assert st[1] != Status.SUCCESS and not bool(res.converged[1])
    assert np.all(st[[0, 2, 3, 4, 5, 6, 7]] == Status.SUCCESS)
    for i in (0, 2, 3, 4, 5, 6, 7):
        _assert_fit_equal(res[i], _single(INIT, x[i]))
    # the degenerate path (sigma -> 0) is chaotic in rounding: only its status is compared
    assert int(res.status[1]) == int(_single(INIT, x[1]).status)


def test_vmap_of_fit_agrees_with_fit_batch_including_bad_datasets():
    x = _datasets()
    x[3, 0] = np.inf
    x[4] = 2.0
    vm = jax.vmap(lambda d: mj.fit(norm_ll, INIT, d))(jnp.asarray(x))
    res = _quiet(mj.fit_batch, norm_ll, INIT, x)
    np.testing.assert_array_equal(np.asarray(vm.status), np.asarray(res.status))
    # dataset 4 (constant: sigma -> 0) is chaotic in rounding, and the user's vmap compiles with XLA's
    # default options where fit_batch compiles with mlejax's (_jit.compiler_options): its status only
    regular = np.arange(len(x)) != 4
    np.testing.assert_array_equal(np.asarray(vm.n_iter)[regular], np.asarray(res.n_iter)[regular])
    ok = np.asarray(res.converged)
    for field in ("params", "stderr", "cov", "loglik"):
        jax.tree_util.tree_map(
            lambda u, v: np.testing.assert_allclose(np.asarray(u)[ok], np.asarray(v)[ok], **TOL),
            getattr(vm, field),
            getattr(res, field),
        )


def test_per_fit_starts_and_constraints_fixed_and_bounded():
    x = _datasets(b=5)
    rng = np.random.default_rng(3)
    mus = rng.normal(size=5)
    sigmas = rng.uniform(0.5, 2.0, 5)

    def ll(p, d):
        return jnp.sum(stats.norm.logpdf(d, p["mu"] + p["off"], p["sigma"]))

    init = {"mu": mj.Bounded(-10.0, 10.0, mus), "sigma": mj.Positive(sigmas), "off": mj.Fixed(0.5)}
    res = mj.fit_batch(ll, init, x, init_axis={"mu": 0, "sigma": 0, "off": None})
    assert res.names == ("mu", "sigma")
    np.testing.assert_array_equal(np.asarray(res.params["off"]), 0.5)
    assert np.all(np.isnan(np.asarray(res.stderr["off"])))
    for i in range(5):
        one = {"mu": mj.Bounded(-10.0, 10.0, mus[i]), "sigma": mj.Positive(sigmas[i]),
               "off": mj.Fixed(0.5)}
        _assert_fit_equal(res[i], mj.fit(ll, one, x[i]))
    np.testing.assert_allclose(np.asarray(res.params["mu"]), x.mean(axis=1) - 0.5, rtol=1e-8)
    # init_axis=0: every leaf batched (bounds shared)
    res0 = mj.fit_batch(ll, init | {"off": mj.Fixed(np.full(5, 0.5))}, x, init_axis=0)
    np.testing.assert_allclose(np.asarray(res0.params["mu"]), np.asarray(res.params["mu"]), **TOL)


def test_pytree_data_and_sandwich_covariance_equal_single_fits():
    rng = np.random.default_rng(4)
    b, n = 5, 60
    X = np.concatenate([np.ones((b, n, 1)), rng.normal(size=(b, n, 2))], axis=2)
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.2])))

    def ll(beta, d):
        eta = d["X"] @ beta
        return jnp.sum(d["y"] * eta - jnp.exp(eta))

    data = {"X": X, "y": y}
    res = mj.fit_batch(ll, jnp.zeros(3), data, cov="sandwich")
    assert res.names == ("theta[0]", "theta[1]", "theta[2]") or len(res.names) == 3
    for i in range(b):
        single = mj.fit(ll, jnp.zeros(3), {"X": X[i], "y": y[i]}, cov="sandwich")
        _assert_fit_equal(res[i], single)
        assert res[i].nobs == n


def test_chunking_gives_the_same_results(monkeypatch):
    x = _datasets()
    whole = mj.fit_batch(norm_ll, INIT, x)
    for bs in (3, 50):  # 3 + 3 + (3, overlapping the second by 1); 50: one chunk
        part = mj.fit_batch(norm_ll, INIT, x, batch_size=bs)
        for f in ("params", "stderr", "loglik", "n_iter", "status"):
            jax.tree_util.tree_map(
                lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), **TOL),
                getattr(whole, f),
                getattr(part, f),
            )
    # the automatic chunk size follows the memory budget
    budget = batch_mod.bytes_per_fit(30, 2, "observed") * 3  # CPU and accelerator alike
    monkeypatch.setattr(batch_mod, "CHUNK_BYTES_CPU", budget)
    monkeypatch.setattr(batch_mod, "CHUNK_BYTES_ACCELERATOR", budget)
    assert batch_mod.plan_chunks(8, None, batch_mod.bytes_per_fit(30, 2, "observed")) == (3, 3)
    auto = mj.fit_batch(norm_ll, INIT, x)
    np.testing.assert_allclose(np.asarray(auto.params["mu"]), np.asarray(whole.params["mu"]), **TOL)


def test_plan_chunks_bounds_memory_for_huge_batches():
    per = batch_mod.bytes_per_fit(200, 2, "observed")
    chunk, n_chunks = batch_mod.plan_chunks(100_000, None, per)
    assert chunk * n_chunks >= 100_000 and (chunk - 1) * n_chunks < 100_000
    assert chunk * per <= batch_mod._chunk_budget()
    assert n_chunks > 1
    assert batch_mod.plan_chunks(10, None, per) == (10, 1)
    assert batch_mod.plan_chunks(10, 4, per) == (4, 3)  # 4 + 4 + (4, overlapping by 2)
    with pytest.raises(ValueError, match="batch_size"):
        batch_mod.plan_chunks(10, 0, per)


def _pairwise_ll(p, x):  # a composite likelihood: every x_i + x_j ~ N(2 mu, 2 sigma^2); n^2 terms per fit
    s = x[:, None] + x[None, :]
    return 0.5 * jnp.sum(stats.norm.logpdf(s, 2 * p["mu"], jnp.sqrt(2.0) * p["sigma"]))


def test_chunks_resized_from_the_compiled_programs_memory(monkeypatch):
    """The data-size estimate puts all 48 pairwise fits in one chunk, whose compiled
    program (XLA's memory analysis) needs far more than the budget; the chunk is
    re-planned from the measured bytes per fit so that every compiled chunk program
    stays within the budget. Estimates: the closed form (mean and pair variance)."""
    x = np.random.default_rng(5).normal(1.0, 2.0, (48, 40))
    budget = 2 * 48 * batch_mod.bytes_per_fit(40, 2, "observed")
    monkeypatch.setattr(batch_mod, "CHUNK_BYTES_CPU", budget)
    monkeypatch.setattr(batch_mod, "CHUNK_BYTES_ACCELERATOR", budget)
    assert batch_mod.plan_chunks(48, None, batch_mod.bytes_per_fit(40, 2, "observed")) == (48, 1)
    before = set(batch_mod._COMPILED)
    res = mj.fit_batch(_pairwise_ll, INIT, x)
    new = [c for k, c in batch_mod._COMPILED.items() if k not in before]
    one = mj.fit_batch(_pairwise_ll, INIT, x, batch_size=48)  # the estimate's plan, kept as asked
    assert batch_mod.chunk_bytes(batch_mod._COMPILED[next(reversed(batch_mod._COMPILED))]) > (
        batch_mod.MEMORY_SLACK * budget)
    assert new and all(batch_mod.chunk_bytes(c) <= batch_mod.MEMORY_SLACK * budget for c in new)
    s = x[:, :, None] + x[:, None, :]
    np.testing.assert_allclose(np.asarray(res.params["mu"]), x.mean(axis=1), rtol=1e-9)
    sigma = np.sqrt(((s - 2 * x.mean(axis=1)[:, None, None]) ** 2).mean(axis=(1, 2)) / 2)
    np.testing.assert_allclose(np.asarray(res.params["sigma"]), sigma, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(one.params["sigma"]), np.asarray(res.params["sigma"]), rtol=1e-12)


def test_second_call_with_same_shapes_does_not_recompile():
    traces = []

    def ll(p, x):
        traces.append(1)  # runs only when JAX traces the function
        return norm_ll(p, x)

    x = _datasets()
    mj.fit_batch(ll, INIT, x, batch_size=3)
    n_first = len(traces)
    assert n_first > 0
    res = mj.fit_batch(ll, {"mu": 1.0, "sigma": mj.Positive(2.0)}, x * 2 + 1, batch_size=3)
    assert len(traces) == n_first
    np.testing.assert_allclose(res.params["mu"], (x * 2 + 1).mean(axis=1), rtol=1e-8, atol=1e-8)
    mj.fit_batch(ll, None, x + 1, init_fn=moments)
    n2 = len(traces)
    mj.fit_batch(ll, None, x - 1, init_fn=moments)
    assert len(traces) == n2


def test_selection_and_result_api():
    x = _datasets()
    res = mj.fit_batch(norm_ll, INIT, x)
    one = res[-1]
    assert isinstance(one, mj.FitResult) and one.nobs == 30
    assert "mlejax maximum-likelihood fit" in one.summary()
    sub = res[np.asarray(res.params["mu"]) > 0]
    assert isinstance(sub, mj.BatchFitResult)
    np.testing.assert_array_equal(
        np.asarray(sub.params["mu"]), np.asarray(res.params["mu"])[np.asarray(res.params["mu"]) > 0]
    )
    assert len(res[1:4]) == 3
    with pytest.raises(IndexError):
        res[8]
    ci = res.conf_int()
    lo, hi = ci["mu"]
    assert lo.shape == (8,)
    np.testing.assert_allclose(lo, np.asarray(res.params["mu"]) - 1.959963984540054 * np.asarray(res.stderr["mu"]))
    d = res.delta(lambda p: p["sigma"] ** 2)
    for i in (0, 7):
        di = res[i].delta(lambda p: p["sigma"] ** 2)
        np.testing.assert_allclose(d.stderr[i], di.stderr, rtol=1e-12)
    assert res.aic.shape == (8,) and res.nparams == 2
    assert "Converged: 8 of 8" in str(res)
    assert len(res.message) == 8


def test_bad_input_is_refused_naming_the_argument():
    x = _datasets(b=4)
    with pytest.raises(ValueError, match="disagree on the batch size"):
        mj.fit_batch(norm_ll, INIT, {"a": x, "b": x[:3]})
    with pytest.raises(ValueError, match="scalar"):
        mj.fit_batch(norm_ll, INIT, {"a": x, "b": 1.0})
    with pytest.raises(ValueError, match="needs data"):
        mj.fit_batch(norm_ll, INIT, None)
    with pytest.raises(ValueError, match="leading batch axis of length 4"):
        mj.fit_batch(norm_ll, {"mu": np.zeros(3), "sigma": mj.Positive(1.0)}, x, init_axis=0)
    with pytest.raises(ValueError, match="not both"):
        mj.fit_batch(norm_ll, None, x, init_fn=moments, init_axis=0)
    with pytest.raises(ValueError, match="init is None"):
        mj.fit_batch(norm_ll, None, x)
    with pytest.raises(ValueError, match="batch_size"):
        mj.fit_batch(norm_ll, INIT, x, batch_size=0)
    with pytest.raises(ValueError, match="strictly above"):
        mj.fit_batch(norm_ll, {"mu": 0.0, "sigma": mj.Positive(np.array([1.0, -1, 1, 1]))}, x,
                     init_axis=0)


def test_slow_fits_rerun_in_a_second_pass_give_exactly_the_one_pass_results(monkeypatch):
    x = _datasets()
    x[[1, 6]] = 0.25  # degenerate: about a hundred iterations before they stop
    two = _quiet(mj.fit_batch, norm_ll, INIT, x)
    assert np.all(np.asarray(two.n_iter)[[1, 6]] > batch_mod.FIRST_PASS_MIN)
    monkeypatch.setattr(batch_mod, "FIRST_PASS_MIN", 10**9)  # one pass with the full maxiter
    one = _quiet(mj.fit_batch, norm_ll, INIT, x)
    for f in ("params", "stderr", "loglik", "n_iter", "status", "x"):
        jax.tree_util.tree_map(
            lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)),
            getattr(one, f),
            getattr(two, f),
        )
