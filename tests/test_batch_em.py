"""em_batch: each dataset gets what mj.em gives it alone (same key), bad datasets
are reported per dataset."""

import jax
import numpy as np
import pytest

import mlejax as mj
from mlejax import Status


def _data(b=5, n=240, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.normal(-2, 1, (b, n // 2, 2)), rng.normal(2, 0.7, (b, n // 2, 2))], axis=1
    )


def test_em_batch_equals_a_loop_of_single_em_fits_and_reports_bad_datasets():
    x = _data()
    x[3, 7, 1] = np.nan
    model = mj.GaussianMixture(2, covariance_type="diag")
    key = jax.random.key(1)
    with pytest.warns(mj.ConvergenceWarning, match="NONFINITE_DATA 1"):  # one warning counts them
        res = mj.em_batch(model, x, key=key)
    assert len(res) == 5
    status = np.asarray(res.status)
    assert status[3] == Status.NONFINITE_DATA
    assert res.status_counts() == {"SUCCESS": 4, "NONFINITE_DATA": 1}
    assert "Converged: 4 of 5" in str(res)
    keys = jax.random.split(key, 5)
    for i in (0, 1, 2, 4):
        one = mj.em(model, x[i], key=keys[i], stderr=i == 0)
        assert int(one.n_iter) == int(res.n_iter[i]) and bool(one.converged)
        np.testing.assert_allclose(float(res.loglik[i]), float(one.loglik), rtol=1e-10)
        jax.tree_util.tree_map(
            lambda a, b, i=i: np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-10,
                                                    atol=1e-12),
            res.params,
            one.params,
        )
        if i == 0:  # one dataset as a full MixtureResult, standard errors included
            full = res[0]
            assert isinstance(full, mj.MixtureResult)
            assert full.message == one.message
            np.testing.assert_allclose(np.asarray(full.stderr["means"]),
                                       np.asarray(one.stderr["means"]), rtol=1e-8)
            np.testing.assert_allclose(float(full.loglik), float(one.loglik), rtol=1e-10)
    with pytest.raises(ValueError, match="NaN"):
        mj.em(model, x[3], key=keys[3])
    bad = res[3]  # the dataset with NaN: its status, no standard errors, no error
    assert int(bad.status) == Status.NONFINITE_DATA and bad.stderr is None
    assert bad.message == "the data contain NaN or inf"
    # EM's own words, from the one status table (not the Newton solver's)
    assert res.message[0] == "converged: the log-likelihood changed by less than tol per observation"
    assert res.message[3] == "the data contain NaN or inf"
    assert all("gradient" not in m for m in res.message)


def test_em_batch_refuses_bad_input():
    model = mj.GaussianMixture(2)
    with pytest.raises(ValueError, match="B datasets"):
        mj.em_batch(model, np.zeros(10))
    with pytest.raises(TypeError, match="GaussianMixture"):
        mj.em_batch(object(), _data())
    with pytest.raises(ValueError, match="maxiter"):
        mj.em_batch(model, _data(), maxiter=0)
