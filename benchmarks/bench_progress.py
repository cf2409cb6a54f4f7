"""The cost of progress reporting: warm (compiled) timings with ``progress`` off and on.

EM for a 1-D two-component Gaussian mixture (N points, ``--iters`` iterations,
tol=0), ``fit_batch`` of gamma fits in chunks, and ``bootstrap`` of a normal fit in
chunks. Off, the compiled program has no callback at all; on, EM calls back every
``iters // 20`` iterations, fit_batch and bootstrap once per chunk (a tqdm bar
writing to a string). The variants are timed interleaved, best of ``--repeats``,
after a warm-up call each (compilation excluded). Two clocks: wall time, and the
process's CPU time (all threads; on a shared machine it moves much less with other
people's load than the wall clock does). Prints off, on and on/off for each.

    python benchmarks/bench_progress.py            # N=200,000, 2,000 EM iterations
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mlejax as mj  # noqa: E402


def best(fns, repeats):
    """Best-of wall and CPU seconds per variant, the variants interleaved."""
    wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():  # interleaved
            t, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(f())
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    return {k: min(v) for k, v in wall.items()}, {k: min(v) for k, v in cpu.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap replicates (10 chunks)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default="em,fit_batch,bootstrap")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, a.n // 2), rng.normal(2, 1, a.n // 2)][:, None]
    gm = mj.GaussianMixture(2)
    sink = io.StringIO()
    em = {
        "off": lambda: mj.em(gm, x, tol=0, maxiter=a.iters, stderr=False).loglik,
        "on": lambda: mj.em(gm, x, tol=0, maxiter=a.iters, stderr=False, progress=mj.progress.Bar(sink)).loglik,
    }
    xs = rng.gamma(2.0, 1.0, (a.batch, 100))

    def ll(p, x):
        return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["a"], scale=1 / p["r"]))

    init = {"a": mj.Positive(1.0), "r": mj.Positive(1.0)}
    fb = {
        "off": lambda: mj.fit_batch(ll, init, xs, batch_size=a.batch // 10).params["a"],
        "on": lambda: mj.fit_batch(ll, init, xs, batch_size=a.batch // 10, progress=mj.progress.Bar(sink)).params["a"],
    }
    xn = rng.normal(1.0, 2.0, 200)

    def nll(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))

    res = mj.fit(nll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, xn)
    key = jax.random.key(0)
    bs = {
        "off": lambda: mj.bootstrap(res, key, a.boot, batch_size=a.boot // 10).replicates["mu"],
        "on": lambda: mj.bootstrap(res, key, a.boot, batch_size=a.boot // 10, progress=mj.progress.Bar(sink)).replicates[
            "mu"],
    }
    cases = {"em": (f"EM N={a.n} iters={a.iters}", em), "fit_batch": (f"fit_batch B={a.batch} (10 chunks)", fb),
             "bootstrap": (f"bootstrap n_boot={a.boot} (10 chunks)", bs)}
    for case in a.cases.split(","):
        name, fns = cases[case]
        for f in fns.values():
            jax.block_until_ready(f())  # compile
        wall, cpu = best(fns, a.repeats)
        print(f"{name}: wall off {wall['off']:.4f} s, on {wall['on']:.4f} s, on/off {wall['on'] / wall['off']:.3f}; "
              f"CPU off {cpu['off']:.4f} s, on {cpu['on']:.4f} s, on/off {cpu['on'] / cpu['off']:.3f}", flush=True)


if __name__ == "__main__":
    main()
