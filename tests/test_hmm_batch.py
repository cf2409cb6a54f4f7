"""``mj.em_batch`` for hidden Markov models: equal to separate ``mj.em`` fits, one
compiled call reused (the Monte-Carlo coverage of the standard errors is a slow
check: benchmarks/slow_checks)."""

import jax
import numpy as np
import pytest

import mlejax as mj
from mlejax.hmm import _batch

TRUTH = {"startprob": np.array([0.5, 0.5]), "transmat": np.array([[0.9, 0.1], [0.2, 0.8]]), "rate": np.array([2.0, 6.0])}


def _simulate(r, n_seq, t, p):
    """Poisson HMM sequences (n_seq, t), vectorised over sequences."""
    s = np.zeros((n_seq, t), int)
    s[:, 0] = r.random(n_seq) < p["startprob"][1]
    for i in range(1, t):
        s[:, i] = r.random(n_seq) < p["transmat"][s[:, i - 1], 1]
    return r.poisson(p["rate"][s]).astype(float)


def test_em_batch_equals_separate_fits_and_does_not_recompile():
    r = np.random.default_rng(0)
    data = [list(_simulate(r, 2, 40, TRUTH)) for _ in range(3)]
    data[1] = data[1][:1]  # datasets of different sizes: padded and masked
    data[2] = [data[2][0][:30], data[2][1]]
    model = mj.HMM(mj.dist.Poisson(), 2)
    key = jax.random.key(1)
    res = mj.em_batch(model, data, key=key, tol=1e-8, stderr=True)
    keys = jax.random.split(key, 3)
    for i, d in enumerate(data):
        one = mj.em(model, d, key=keys[i], tol=1e-8)
        np.testing.assert_allclose(res.loglik[i], one.loglik, rtol=1e-10)
        assert int(res.n_iter[i]) == int(one.n_iter)
        for name in ("startprob", "transmat", "rate"):
            np.testing.assert_allclose(res.params[name][i], one.params[name], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(res.stderr["rate"][i], one.stderr["rate"], rtol=1e-8)
        np.testing.assert_allclose(res[i].loglik, one.loglik, rtol=1e-10)
    assert res.status_counts() == {"SUCCESS": 3} and "3 datasets, 2 states" in res.summary()
    before = _batch._chunks_jit._cache_size()
    again = mj.em_batch(model, [[s + 1 for s in d] for d in data], key=key, tol=1e-8)
    assert _batch._chunks_jit._cache_size() == before  # same shapes: the compiled fit is reused
    assert not np.allclose(again.loglik, res.loglik)


def test_em_batch_hmm_bad_input():
    model = mj.HMM(mj.dist.Poisson(), 2)
    with pytest.raises(ValueError, match="dataset 1: .*at least 2 time steps"):
        mj.em_batch(model, [np.ones(10), np.ones(1)])
    with pytest.raises(ValueError, match="lengths has 1 entries for 2 datasets"):
        mj.em_batch(model, np.ones((2, 2, 10)), lengths=[[10, 10]])
    with pytest.raises(TypeError, match="lengths= and missing= are for hidden Markov models"):
        mj.em_batch(mj.PoissonMixture(2), np.ones((2, 10)), lengths=[10, 10])
