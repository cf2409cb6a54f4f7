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
    off = _em_jit.lower(*args, 0).as_text()
    on = _em_jit.lower(*args, 5).as_text()
    assert "callback" not in off and "callback" in on


def test_bad_progress_argument(mix):
    with pytest.raises(TypeError, match="progress="):
        mj.em(mj.GaussianMixture(2), mix, progress="yes")
