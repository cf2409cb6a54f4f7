"""Inference benchmarks (issue 3), each against its peer in the same run.

(a) 95% profile-likelihood intervals for every coefficient of a logistic regression
    (N=5,000, intercept + 5 covariates = 12 interval ends). Peer: what a statsmodels
    user writes: scipy.optimize.brentq on the likelihood-ratio deviance per end, each
    evaluation a statsmodels Logit refit with the profiled coefficient as an offset.
    mlejax: ``res.conf_int(method="profile")`` (all ends vmapped in one compiled
    call), warm and first call (compilation included). The ends are checked to agree.
(b) profile log-likelihood curve of one coefficient on a 50-point grid: statsmodels
    offset refits in a loop vs ``res.profile(name, grid)`` (vmapped, warm).

Run:  python benchmarks/bench_inference.py [--repeat 3]
Times are the best of --repeat runs; ratios are peer / mlejax (higher is better).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

import statsmodels.api as sm  # noqa: E402
from scipy.optimize import brentq  # noqa: E402
from scipy.stats import chi2  # noqa: E402

import mlejax as mj  # noqa: E402

N, P = 5000, 5


def logit_ll(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(N), rng.normal(size=(N, P))])
    beta = np.linspace(-0.5, 0.5, P + 1)
    y = (rng.random(N) < 1 / (1 + np.exp(-x @ beta))).astype(float)
    return x, y


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def row(name, t, ref):
    print(f"  {name:<52} {t * 1e3:10.1f} ms   {t / ref:8.2f}x mlejax time")


def sm_profile_llf(x, y, j, b):
    rest = np.delete(x, j, axis=1)
    return sm.Logit(y, rest, offset=b * x[:, j]).fit(disp=0, method="newton", tol=1e-12).llf


def sm_profile_intervals(x, y, level=0.95):
    full = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12)
    c = chi2.ppf(level, 1)
    out = np.empty((x.shape[1], 2))
    for j in range(x.shape[1]):
        b, se = full.params[j], full.bse[j]
        f = lambda v, j=j: 2 * (full.llf - sm_profile_llf(x, y, j, v)) - c  # noqa: E731
        out[j, 0] = brentq(f, b - 3 * se, b, xtol=1e-10)
        out[j, 1] = brentq(f, b, b + 3 * se, xtol=1e-10)
    return out


def mj_intervals(x, y):
    res = mj.fit(logit_ll, {"beta": jnp.zeros(x.shape[1])}, {"X": x, "y": y})
    lo, hi = res.conf_int(method="profile")["beta"]
    return np.column_stack([np.asarray(lo), np.asarray(hi)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    x, y = make_data()
    warnings.simplefilter("ignore")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; N={N}, k={P + 1}")

    print("(a) 95% profile intervals, all coefficients (12 ends)")
    t_first, _ = best_of(lambda: mj_intervals(x, y), 1)  # compiles
    x2, y2 = make_data(1)  # new numbers, same shapes: no recompile
    t_mj, ours = best_of(lambda: mj_intervals(x2, y2), args.repeat)
    t_sm, theirs = best_of(lambda: sm_profile_intervals(x2, y2), args.repeat)
    print(f"  max |difference| of the ends: {np.max(np.abs(ours - theirs)):.2e}")
    row("mlejax conf_int(method='profile') incl. fit, warm", t_mj, t_mj)
    row("mlejax first call (fit + profile compilation)", t_first, t_mj)
    row("statsmodels offset refits + scipy brentq", t_sm, t_mj)

    print("(b) profile curve of beta[1], 50-point grid")
    res = mj.fit(logit_ll, {"beta": jnp.zeros(P + 1)}, {"X": x2, "y": y2})
    b, se = float(res.params["beta"][1]), float(res.stderr["beta"][1])
    grid = np.linspace(b - 4 * se, b + 4 * se, 50)
    res.profile("beta[1]", grid)  # compile
    t_mj, prof = best_of(lambda: jax.block_until_ready(res.profile("beta[1]", grid).loglik), args.repeat)
    t_sm, ref = best_of(lambda: np.array([sm_profile_llf(x2, y2, 1, v) for v in grid]), args.repeat)
    print(f"  max |difference| of the profile log-likelihood: {np.max(np.abs(np.asarray(prof) - ref)):.2e}")
    row("mlejax res.profile (vmapped, warm)", t_mj, t_mj)
    row("statsmodels offset refits in a loop", t_sm, t_mj)


if __name__ == "__main__":
    main()
