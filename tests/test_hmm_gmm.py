"""GMM-HMM emissions (``mj.GMMHMM``): hmmlearn's GMMHMM from identical starting values,
brute-force enumeration of every state path, and the one-component case = GaussianHMM."""

import warnings

import hmmlearn.hmm as hl
import numpy as np
import pytest
from hmmlearn.base import ConvergenceMonitor
from scipy import stats
from scipy.special import logsumexp
from test_hmm import _frozen_fit, brute

import mlejax as mj

K, M, D = 3, 2, 2
LENGTHS = [40, 30, 50]


class ExactGMMHMM(hl.GMMHMM):
    """hmmlearn's GMMHMM with the exact M-step. hmmlearn accumulates the covariance
    statistics around the PREVIOUS means (``centered = X - self.means_`` in the E-step),
    which adds ``n (mu_new - mu_old)(mu_new - mu_old)^T`` to each scatter; EM's M-step
    centres at the new means. This subtracts that term before hmmlearn's own M-step."""

    def _do_mstep(self, st):
        n = st["post_mix_sum"]
        d = st["m_n"] / n[..., None] - self.means_
        ct = self.covariance_type
        if ct == "full":
            st["c_n"] = st["c_n"] - n[..., None, None] * d[..., :, None] * d[..., None, :]
        elif ct == "diag":
            st["c_n"] = st["c_n"] - n[..., None] * d**2
        elif ct == "spherical":
            st["c_n"] = st["c_n"] - n * np.sum(d**2, -1)
        else:
            st["c_n"] = st["c_n"] - np.einsum("km,kmi,kmj->kij", n, d, d)
        super()._do_mstep(st)


def _data(seed=0):
    r = np.random.default_rng(seed)
    return [r.normal(size=(t, D)) + 3 * r.integers(0, 3, size=(t, 1)) for t in LENGTHS]


def _init(x, ct, seed):
    r = np.random.default_rng(seed)
    c = np.cov(x.T)
    cov = {"full": np.broadcast_to(c, (K, M, D, D)), "tied": np.broadcast_to(c, (K, D, D)),
           "diag": np.broadcast_to(np.diag(c), (K, M, D)), "spherical": np.full((K, M), np.mean(np.diag(c)))}[ct]
    return {"startprob": r.dirichlet(np.ones(K)), "transmat": r.dirichlet(np.ones(K) * 3, size=K),
            "weights": r.dirichlet(np.ones(M) * 3, size=K),
            "means": x[r.choice(len(x), K * M, replace=False)].reshape(K, M, D),
            "covariances": np.array(cov)}


def _hmmlearn(cls, init, ct, x, n):
    # spherical: hmmlearn's default prior divides by d * n + d - M; this one gives the MLE (d * n)
    prior = -(D / 2 + 1) if ct == "spherical" else None
    m = cls(K, M, covariance_type=ct, covars_prior=prior, init_params="", n_iter=n, tol=-np.inf)
    m.startprob_, m.transmat_, m.weights_, m.means_, m.covars_ = (
        init["startprob"], init["transmat"], init["weights"], init["means"], init["covariances"])
    m.monitor_ = ConvergenceMonitor(-np.inf, n, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(x, LENGTHS)
    return m.score(x, LENGTHS)


@pytest.mark.parametrize("ct", ["diag", "full", "spherical", "tied"])
def test_gmmhmm_equals_hmmlearn_exact_mstep(ct):
    seqs = _data()
    x = np.concatenate(seqs)
    init = _init(x, ct, 1)
    model = mj.GMMHMM(K, M, ct, reg_covar=0.0)
    for n in (1, 5, 50):
        ref = _hmmlearn(ExactGMMHMM, init, ct, x, n)
        res = mj.em(model, seqs, init=init, tol=0, maxiter=n, stderr=False)
        assert int(res.n_iter) == n and not bool(res.loglik_decreased)
        np.testing.assert_allclose(res.loglik, ref, rtol=1e-8)
    # unmodified hmmlearn centres its covariances at the previous means: a different (lower) path
    assert _hmmlearn(hl.GMMHMM, init, ct, x, 5) != pytest.approx(
        float(mj.em(model, seqs, init=init, tol=0, maxiter=5, stderr=False).loglik), rel=1e-8)


def test_gmmhmm_equals_enumeration_of_every_path():
    r = np.random.default_rng(5)
    p = {"startprob": np.array([0.5, 0.3, 0.2]), "transmat": r.dirichlet(np.ones(3) * 2, size=3),
         "weights": r.dirichlet(np.ones(2) * 2, size=3), "means": r.normal(scale=2, size=(3, 2, 1)),
         "covariances": r.uniform(0.5, 2.0, size=(3, 2, 1))}
    seqs = [r.normal(size=6) * 2, r.normal(size=5) * 2]
    res = _frozen_fit(mj.GMMHMM(3, 2, "diag"), seqs, p)
    total = 0.0
    for s, g, path in zip(seqs, res.predict_proba(seqs), res.decode(seqs)):
        comp = np.log(p["weights"])[None] + stats.norm.logpdf(s[:, None, None], p["means"][None, :, :, 0],
                                                              np.sqrt(p["covariances"][None, :, :, 0]))
        ll, gb, best, _ = brute(p["startprob"], p["transmat"], logsumexp(comp, -1))
        total += ll
        np.testing.assert_allclose(g, gb, atol=1e-12)
        np.testing.assert_array_equal(path, best)
    np.testing.assert_allclose(res.score(seqs), total, rtol=1e-12)


def test_one_component_per_state_is_the_gaussian_hmm_and_errors():
    seqs = _data(2)
    x = np.concatenate(seqs)
    init = _init(x, "full", 3)
    g = {"startprob": init["startprob"], "transmat": init["transmat"], "means": init["means"][:, 0],
         "covariances": init["covariances"][:, 0]}
    one = {**g, "weights": np.ones((K, 1)), "means": g["means"][:, None], "covariances": g["covariances"][:, None]}
    a = mj.em(mj.GMMHMM(K, 1, "full"), seqs, init=one, tol=0, maxiter=8, stderr=False)
    b = mj.em(mj.GaussianHMM(K, "full"), seqs, init=g, tol=0, maxiter=8, stderr=False)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=1e-12)
    np.testing.assert_allclose(a.params["means"][:, 0], b.params["means"], rtol=1e-9)
    with pytest.raises(ValueError, match="n_mix"):
        mj.GMMHMM(2, 0)
    with pytest.raises(ValueError, match="sum to 1"):
        mj.em(mj.GMMHMM(K, 1, "full"), seqs, init={**one, "weights": np.full((K, 1), 0.5)})
    with pytest.raises(ValueError, match=r"init\['means'\] has shape \(3, 1, 2\); it needs \(3, 2, 2\)"):
        mj.em(mj.GMMHMM(K, 2, "full"), seqs, init={**one, "weights": np.full((K, 2), 0.5)})


def _np_gmm_loglik(theta, x):
    """Independent numpy forward algorithm for a 2-state, 2-component 1-D GMM-HMM on
    sequences of equal length (N, T); theta = startprob[0], transmat[:, 0],
    weights[:, 0], means (2, 2), variances (2, 2)."""
    pi = np.array([theta[0], 1 - theta[0]])
    A = np.column_stack([theta[1:3], 1 - theta[1:3]])
    w = np.column_stack([theta[3:5], 1 - theta[3:5]])
    mu, var = theta[5:9].reshape(2, 2), theta[9:13].reshape(2, 2)
    lb = logsumexp(np.log(w) + stats.norm.logpdf(x[..., None, None], mu, np.sqrt(var)), -1)  # (N, T, 2)
    a = np.log(pi) + lb[:, 0]
    for t in range(1, x.shape[1]):
        a = logsumexp(a[:, :, None] + np.log(A), axis=1) + lb[:, t]
    return np.sum(logsumexp(a, -1))


def test_gmmhmm_stderr_equal_finite_differences():
    from test_hmm import _fd_hessian

    r = np.random.default_rng(9)
    s = np.repeat(r.integers(0, 2, size=(4, 5)), 10, axis=1)  # (4, 50) persistent states
    comp = r.integers(0, 2, size=s.shape)
    centres, sds = np.array([[-5.0, -2.0], [2.0, 5.0]]), np.array([[0.6, 0.8], [0.7, 0.5]])
    x = centres[s, comp] + r.normal(size=s.shape) * sds[s, comp]
    init = {"startprob": np.array([0.5, 0.5]), "transmat": np.array([[0.8, 0.2], [0.2, 0.8]]),
            "weights": np.full((2, 2), 0.5), "means": centres[..., None], "covariances": sds[..., None] ** 2}
    res = mj.em(mj.GMMHMM(2, 2, "diag", reg_covar=0.0), list(x), init=init, tol=1e-11, maxiter=5000)
    p = {k: np.asarray(v) for k, v in res.params.items()}
    theta = np.r_[p["startprob"][0], p["transmat"][:, 0], p["weights"][:, 0], p["means"].ravel(),
                  p["covariances"].ravel()]
    H = _fd_hessian(lambda t: _np_gmm_loglik(t, x), theta, 1e-3 * np.maximum(np.abs(theta), 0.05))
    se_fd = np.sqrt(np.diag(np.linalg.inv(-H)))
    se = np.r_[res.stderr["startprob"][0], res.stderr["transmat"][:, 0], res.stderr["weights"][:, 0],
               np.ravel(res.stderr["means"]), np.ravel(res.stderr["covariances"])]
    np.testing.assert_allclose(se, se_fd, rtol=1e-5)
