"""Progress on long work: EM iterations and fit_batch chunks reach the reporter when
asked; nothing is compiled in when not; results are the same either way."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mlejax as mj
from mlejax.mixture._em import _em_jit


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 1, 300), rng.normal(2.0, 1.0, 300)][:, None]


def _loglik(params, x):
    w, m, c = (np.asarray(params[k]) for k in ("weights", "means", "covariances"))
    return np.log(sum(wk * stats.norm.pdf(x[:, 0], mk[0], np.sqrt(ck[0, 0])) for wk, mk, ck in zip(w, m, c))).sum()


def test_em_recorder_gets_every_iteration(mix):
    rec = mj.progress.Recorder()
    res = mj.em(mj.GaussianMixture(2), mix, progress=rec, tol=0, maxiter=60, stderr=False)
    assert rec.iterations == list(range(1, 61))
    assert np.all(np.diff(rec.loglik) >= -1e-9)  # EM never lowers the log-likelihood
    plain = mj.em(mj.GaussianMixture(2), mix, tol=0, maxiter=60, stderr=False)
    assert float(plain.loglik) == float(res.loglik)  # the same fit with or without progress
    # iteration t reports the log-likelihood of the parameters after t - 1 M-steps (scipy oracle)
    five = mj.em(mj.GaussianMixture(2), mix, tol=0, maxiter=5, stderr=False)
    assert rec.loglik[5] == pytest.approx(_loglik(five.params, mix), rel=1e-10)


def test_em_progress_bar_on_a_long_run(mix, capfd):
    mj.em(mj.GaussianMixture(2), mix, progress=True, tol=0, maxiter=2000, stderr=False)
    err = capfd.readouterr().err
    assert "EM" in err and "2000/2000" in err


def test_fit_batch_progress_per_chunk(capfd):
    x = np.random.default_rng(1).gamma(2.0, 1.0, (64, 30))

    def ll(p, x):
        return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["a"], scale=1 / p["r"]))

    init = {"a": mj.Positive(1.0), "r": mj.Positive(1.0)}

    class Log(mj.progress.Recorder):
        def update(self, done, loglik=None):
            self.seen = [*getattr(self, "seen", []), int(done)]

    rec = Log()
    res = mj.fit_batch(ll, init, x, batch_size=16, progress=rec)
    assert rec.total == 64 and rec.seen == [16, 32, 48, 64, 64]  # four chunks, then the host's final count
    plain = mj.fit_batch(ll, init, x, batch_size=16)
    np.testing.assert_array_equal(np.asarray(plain.params["a"]), np.asarray(res.params["a"]))
    mj.fit_batch(ll, init, x, batch_size=16, progress=True)
    assert "64/64" in capfd.readouterr().err


def test_no_callback_compiled_when_off(mix):
    gm = mj.GaussianMixture(2)
    x = jnp.asarray(mix)
    args = (gm.static(), gm.hyper(), x, None, jax.random.key(0), None, jnp.asarray(1e-6), jnp.asarray(10, jnp.int32),
            "kmeans", 1)
    off = _em_jit.lower(*args, 0, False).as_text()
    on = _em_jit.lower(*args, 5, False).as_text()
    assert "callback" not in off and "callback" in on


def test_bad_progress_argument(mix):
    with pytest.raises(TypeError, match="progress="):
        mj.em(mj.GaussianMixture(2), mix, progress="yes")


# -- bootstrap, profile grids and profile intervals ----------------------------------


class _Seen(mj.progress.Recorder):
    def update(self, done, loglik=None):
        self.seen = [*getattr(self, "seen", []), int(done)]


def _normal_ll(p, x):
    return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))


@pytest.fixture(scope="module")
def normal_fit():
    x = np.random.default_rng(3).normal(1.0, 2.0, 40)
    return mj.fit(_normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x), x


def test_bootstrap_progress_per_chunk(normal_fit, capfd):
    res, _ = normal_fit
    rec = _Seen()
    boot = mj.bootstrap(res, jax.random.key(1), n_boot=64, batch_size=16, progress=rec)
    assert rec.total == 64 and rec.seen == [16, 32, 48, 64, 64]  # four chunks, then the host's final count
    plain = mj.bootstrap(res, jax.random.key(1), n_boot=64, batch_size=16)
    np.testing.assert_array_equal(np.asarray(plain.replicates["mu"]), np.asarray(boot.replicates["mu"]))
    mj.bootstrap(res, jax.random.key(1), n_boot=64, batch_size=16, progress=True)
    assert "64/64" in capfd.readouterr().err


def test_profile_grid_progress_and_closed_form(normal_fit):
    """Normal mu profiled: sigma^2(mu) = mean((x - mu)^2), so the profile log-likelihood
    is -n/2 (log(2 pi sigma^2(mu)) + 1); the grid runs in chunks of 3 when reported."""
    res, x = normal_fit
    grid = np.linspace(0.0, 2.0, 41)
    rec = _Seen()
    prof = res.profile("mu", grid, progress=rec)
    assert rec.total == 41 and rec.seen == [*range(3, 41, 3), 41]
    s2 = ((x[None, :] - grid[:, None]) ** 2).mean(axis=1)
    np.testing.assert_allclose(np.asarray(prof.loglik), -0.5 * x.size * (np.log(2 * np.pi * s2) + 1), rtol=1e-10)
    plain = res.profile("mu", grid)
    np.testing.assert_allclose(np.asarray(prof.loglik), np.asarray(plain.loglik), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(prof.params["sigma"]), np.sqrt(s2), rtol=1e-8)


def test_profile_interval_progress_per_parameter(normal_fit):
    """Normal mu: the profile deviance n log(1 + (mu - xbar)^2 / s^2) gives the ends in
    closed form; one reported call per parameter."""
    res, x = normal_fit
    rec = _Seen()
    ci = res.conf_int(0.95, method="profile", progress=rec)
    assert rec.total == 4 and rec.seen == [2, 4]
    half = x.std() * np.sqrt(np.expm1(stats.chi2.ppf(0.95, 1) / x.size))
    np.testing.assert_allclose(ci["mu"], (x.mean() - half, x.mean() + half), rtol=1e-8)
    np.testing.assert_allclose(np.asarray(ci["sigma"]), np.asarray(res.conf_int(0.95, method="profile")["sigma"]),
                               rtol=1e-12)


def test_profile_2d_progress(normal_fit):
    """With both parameters held there is nothing to re-maximise: the surface is the
    log-likelihood itself (scipy)."""
    from mlejax._profile import profile_2d

    res, x = normal_fit
    gx, gy = np.linspace(0.5, 1.5, 5), np.linspace(1.5, 2.5, 4)
    rec = _Seen()
    pll, dev, ok = profile_2d(res, ("mu", "sigma"), gx, gy, progress=rec)
    assert rec.total == 20 and rec.seen == list(range(1, 21)) and ok.all()
    want = stats.norm.logpdf(x[None, None, :], gx[None, :, None], gy[:, None, None]).sum(-1)
    np.testing.assert_allclose(pll, want, rtol=1e-12)
    np.testing.assert_allclose(dev, 2 * (float(res.loglik) - want), rtol=1e-9, atol=1e-9)


def test_default_progress_only_in_an_interactive_session(monkeypatch):
    from mlejax import _progress

    monkeypatch.setattr(_progress, "interactive", lambda: False)
    assert _progress.reporter(None) is None
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    bar = _progress.reporter(None)
    assert isinstance(bar, mj.progress.Bar) and bar.delay == _progress.AUTO_DELAY
    assert _progress.reporter(False) is None


def test_delayed_plain_bar_is_silent_for_quick_work(monkeypatch):
    import builtins
    import io

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kw):  # the plain stderr line, as without the extra
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    quick, slow = io.StringIO(), io.StringIO()
    for sink, delay in ((quick, 60.0), (slow, 0.0)):
        bar = mj.progress.Bar(sink, delay=delay)
        bar.start(10, "fits")
        bar.update(10)
        bar.close()
    assert quick.getvalue() == "" and "fits: 10/10" in slow.getvalue()
