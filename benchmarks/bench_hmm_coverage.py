"""Monte-Carlo coverage of the HMM standard errors (issue 12): many simulated datasets
fitted by ``mj.em_batch`` (one vmapped compiled Baum-Welch) with ``stderr=True`` (one
vmapped Hessian of the forward log-likelihood per dataset); the share of 95% Wald
intervals that cover the true value, per parameter, with its binomial standard error.

Usage: python benchmarks/bench_hmm_coverage.py [--reps 2000] [--seqs 8] [--steps 100]

Two models: a 2-state Poisson HMM and a 2-state 1-D Gaussian HMM (diag). The
low-mean state is labelled 0 in every fit (label switching).
"""

import argparse
import time

import jax
import numpy as np

import mlejax as mj

jax.config.update("jax_enable_x64", True)

TRANSMAT = np.array([[0.9, 0.1], [0.2, 0.8]])


def states(r, n, t):
    s = np.zeros((n, t), int)
    s[:, 0] = r.random(n) < 0.5
    for i in range(1, t):
        s[:, i] = r.random(n) < TRANSMAT[s[:, i - 1], 1]
    return s


def coverage(name, model, x, truth, mean_key):
    reps = x.shape[0]
    t0 = time.perf_counter()
    res = mj.em_batch(model, x, lengths=np.full(x.shape[:2], x.shape[2]), tol=1e-8, maxiter=5000, stderr=True)
    wall = time.perf_counter() - t0
    ok = np.asarray(res.converged) & ~np.asarray(res.information_not_pd)
    mean = np.asarray(res.params[mean_key]).reshape(reps, 2)
    flip = mean[:, 0] > mean[:, 1]

    def ordered(a):
        a = np.asarray(a).reshape(reps, 2)
        return np.where(flip[:, None], a[:, ::-1], a)

    est = {f"{mean_key}": ordered(res.params[mean_key]),
           "transmat[i,i]": ordered(np.diagonal(res.params["transmat"], axis1=1, axis2=2))}
    se = {f"{mean_key}": ordered(res.stderr[mean_key]),
          "transmat[i,i]": ordered(np.diagonal(res.stderr["transmat"], axis1=1, axis2=2))}
    print(f"{name}: {reps} datasets ({int(ok.sum())} converged with a positive definite information), "
          f"{wall:.1f} s for fits + standard errors")
    for key, value in est.items():
        for i in range(2):
            hit = np.abs(value[ok, i] - truth[key][i]) < 1.96 * se[key][ok, i]
            c = hit.mean()
            print(f"  {key}, state {i}:  coverage {c:.3f} +- {np.sqrt(c * (1 - c) / ok.sum()):.3f}   mean SE {np.mean(se[key][ok, i]):.4f}"
                  f"   SD of estimates {np.std(value[ok, i]):.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seqs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    a = ap.parse_args()
    r = np.random.default_rng(12)
    diag = np.diag(TRANSMAT)
    s = states(r, a.reps * a.seqs, a.steps)
    x = r.poisson(np.array([2.0, 6.0])[s]).astype(float).reshape(a.reps, a.seqs, a.steps)
    coverage("Poisson rates (2, 6)", mj.HMM(mj.dist.Poisson(), 2), x, {"rate": [2.0, 6.0], "transmat[i,i]": diag},
             "rate")
    s = states(r, a.reps * a.seqs, a.steps)
    x = (np.array([-1.0, 1.0])[s] + r.normal(size=s.shape) * np.array([0.7, 1.0])[s]).reshape(a.reps, a.seqs, a.steps)
    coverage("Gaussian means (-1, 1), sds (0.7, 1)", mj.GaussianHMM(2, "diag"), x,
             {"means": [-1.0, 1.0], "transmat[i,i]": diag}, "means")


if __name__ == "__main__":
    main()
