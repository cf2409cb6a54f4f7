"""Slow statistical checks: Monte-Carlo coverage of standard errors and bootstrap
intervals (asymptotic normality, the textbook core). Each fits hundreds of simulated
datasets; they were in the test suite and moved here to keep it under 10 minutes.
The suite keeps the exact oracles of the same quantities (finite-difference Hessians
of the log-likelihood, closed forms, scikit-learn/hmmlearn/statsmodels).

Run:  python -m pytest benchmarks/slow_checks -q
"""

import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import mlejax as mj
from mlejax.mixture import _em

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_hmm_batch import TRUTH as HMM_TRUTH, _simulate  # noqa: E402  the suite's Poisson-HMM simulator


def test_standard_errors_match_monte_carlo():
    """The spread of the estimates over simulated datasets matches the standard
    errors from the observed information of the marginal likelihood. All datasets
    are fitted at once: EM and standard errors vmapped in one compiled function."""
    from mlejax.mixture._result import marginal_information, stderr_from_information

    rng = np.random.default_rng(5)
    truth = {
        "weights": np.array([0.4, 0.6]),
        "means": np.array([[0.0, 0.0], [2.5, 1.0]]),
        "covariances": np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]]]),
    }
    reps, n = 150, 500
    lab = (rng.random((reps, n)) < truth["weights"][1]).astype(int)
    ch = np.linalg.cholesky(truth["covariances"])
    xs = truth["means"][lab] + np.einsum("rnde,rne->rnd", ch[lab], rng.normal(size=(reps, n, 2)))
    model = mj.GaussianMixture(2, "full", reg_covar=0.0)
    start = jax.tree_util.tree_map(jnp.asarray, truth)

    def one(x):
        w = jnp.ones(n)
        out = _em.em_pure(model, x, w, jax.random.key(0), start, jnp.asarray(1e-10), jnp.asarray(1000))
        u, info = marginal_information(model, out.params, x, w, n)
        se = stderr_from_information(model, out.params, u, info)[0]
        return out.params, se, out.converged

    params, se, conv = jax.jit(jax.vmap(one))(jnp.asarray(xs))
    assert np.all(np.asarray(conv))
    est = np.asarray(jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(params))
    se = np.asarray(jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(se))
    ratio = np.median(se, 0) / est.std(0, ddof=1)
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio


def test_stderr_coverage_monte_carlo():
    """95% Wald intervals from the standard errors cover the truth at the nominal rate:
    200 simulated datasets (8 sequences x 60 steps each), fitted and their standard
    errors computed in two vmapped calls. 3 binomial SDs around 0.95 (+-0.046)."""
    r = np.random.default_rng(2024)
    reps = 200
    x = _simulate(r, reps * 8, 60, HMM_TRUTH).reshape(reps, 8, 60)
    res = mj.em_batch(mj.HMM(mj.dist.Poisson(), 2), x, lengths=np.full((reps, 8), 60), tol=1e-8, stderr=True)
    assert res.status_counts() == {"SUCCESS": reps}
    flip = np.asarray(res.params["rate"][:, 0] > res.params["rate"][:, 1])  # label the low-rate state 0
    def ordered(a):
        a = np.asarray(a)
        return np.where(flip[:, None], a[:, ::-1], a)
    est = np.c_[ordered(res.params["rate"]), ordered(np.diagonal(res.params["transmat"], axis1=1, axis2=2))]
    se = np.c_[ordered(res.stderr["rate"]), ordered(np.diagonal(res.stderr["transmat"], axis1=1, axis2=2))]
    truth = np.r_[HMM_TRUTH["rate"], np.diag(HMM_TRUTH["transmat"])]
    cover = np.mean(np.abs(est - truth) < 1.96 * se, 0)
    assert np.all(np.isfinite(se))
    assert np.all(np.abs(cover - 0.95) < 3 * np.sqrt(0.95 * 0.05 / reps)), cover


def test_percentile_interval_coverage_is_near_nominal():
    """200 simulated exponential samples (n=40); the 90% percentile interval of the rate
    should cover the truth ~90% of the time (binomial sd 2.1%)."""

    def ll(p, x):
        return jnp.sum(jnp.log(p["rate"]) - p["rate"] * x)

    rate, n, reps = 2.0, 40, 200
    xs = np.random.default_rng(7).exponential(1 / rate, (reps, n))
    fits = mj.fit_batch(ll, {"rate": mj.Positive(1.0)}, xs)
    hits = 0
    keys = jax.random.split(jax.random.key(11), reps)
    for i in range(reps):
        with warnings.catch_warnings():  # a rare replicate may not converge; it is left out
            warnings.simplefilter("ignore", mj.ConvergenceWarning)
            lo, hi = mj.bootstrap(fits[i], keys[i], 300).conf_int(0.90)["rate"]
        hits += bool(lo <= rate <= hi)
    cover = hits / reps
    assert 0.82 <= cover <= 0.97, cover
