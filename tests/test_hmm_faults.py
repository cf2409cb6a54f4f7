"""Row 39 of shared/reference/FAULTS.md: hidden Markov models (hmmlearn#169, #137)."""

import numpy as np
import pytest

import mlejax as mj

X = np.r_[np.random.default_rng(0).normal(-3, 1, 40), np.random.default_rng(1).normal(3, 1, 40)]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_row39_bad_n_states(k):
    with pytest.raises(ValueError, match="n_states"):
        mj.GaussianHMM(k)
    with pytest.raises(ValueError, match="n_states"):
        mj.HMM(mj.dist.Poisson(), k)


def test_row39_sequences_shorter_than_two():
    with pytest.raises(ValueError, match="at least 2 time steps"):
        mj.em(mj.GaussianHMM(2), [X, X[:1]])
    with pytest.raises(ValueError, match="at least 2 time steps"):
        mj.em(mj.GaussianHMM(2), np.stack([X, X]), lengths=[80, 1])


def test_row39_lengths_that_do_not_match():
    pad = np.stack([X, X])
    with pytest.raises(ValueError, match="one integer length per sequence"):
        mj.em(mj.GaussianHMM(2), pad, lengths=[80])
    with pytest.raises(ValueError, match="between 0 and the padded length"):
        mj.em(mj.GaussianHMM(2), pad, lengths=[80, 81])
    with pytest.raises(ValueError, match="lengths= goes with one padded array"):
        mj.em(mj.GaussianHMM(2), [X, X], lengths=[80, 80])


def test_row39_non_stochastic_start():
    init = {"startprob": np.array([0.5, 0.5]), "transmat": np.array([[0.9, 0.2], [0.1, 0.9]]),
            "means": np.array([[-3.0], [3.0]]), "covariances": np.array([1.0, 1.0])}
    with pytest.raises(ValueError, match="not stochastic"):
        mj.em(mj.GaussianHMM(2, "spherical"), X, init=init)
    init["transmat"] = np.array([[0.9, 0.1], [0.1, 0.9]])
    init["startprob"] = np.array([0.7, 0.7])
    with pytest.raises(ValueError, match="not stochastic"):
        mj.em(mj.GaussianHMM(2, "spherical"), X, init=init)


def test_row39_state_with_no_mass_keeps_its_parameters_and_is_flagged():
    init = {"startprob": np.array([0.5, 0.3, 0.2]),
            "transmat": np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
            "means": np.array([[-3.0], [3.0], [1e4]]), "covariances": np.array([1.0, 1.0, 1.0])}
    with pytest.warns(mj.ConvergenceWarning, match="received no posterior mass"):
        res = mj.em(mj.GaussianHMM(3, "spherical"), X, init=init, tol=0, maxiter=20, stderr=False)
    assert np.asarray(res.empty_states).tolist() == [False, False, True]
    for leaf in res.params.values():
        assert np.all(np.isfinite(np.asarray(leaf)))
    np.testing.assert_allclose(np.asarray(res.params["means"])[2], [1e4])  # kept
    np.testing.assert_allclose(np.asarray(res.params["covariances"])[2], 1.0)
    np.testing.assert_allclose(np.asarray(res.params["transmat"]).sum(1), 1.0, rtol=1e-12)
    assert "received no mass" in res.message


def test_nan_data_and_bad_options_are_refused():
    y = X.copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match="missing='marginalize'"):
        mj.em(mj.GaussianHMM(2), y)
    with pytest.raises(ValueError, match="missing="):
        mj.em(mj.GaussianHMM(2), X, missing="drop")
    with pytest.raises(ValueError, match="weights= is not supported"):
        mj.em(mj.GaussianHMM(2), X, weights=np.ones(80))
    with pytest.raises(TypeError, match="lengths= and missing="):
        mj.em(mj.GaussianMixture(2), X[:, None], lengths=[80])
    with pytest.raises(ValueError, match="covariance_type"):
        mj.GaussianHMM(2, "banded")
    with pytest.raises(TypeError, match="instance"):
        mj.HMM(mj.dist.Poisson, 2)
    with pytest.raises(ValueError, match="outside the support"):
        mj.em(mj.HMM(mj.dist.Poisson(), 2), X)
