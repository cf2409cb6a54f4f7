"""The cost of progress reporting: warm (compiled) timings with ``progress`` off and on.

EM for a 1-D two-component Gaussian mixture (N points, ``--iters`` iterations,
tol=0) and ``fit_batch`` of gamma fits in chunks. Off, the compiled program has no
callback at all; on, EM calls back every ``iters // 100`` iterations and fit_batch
once per chunk. The two variants are timed interleaved, best of ``--repeats``,
after a warm-up call each (compilation excluded). Prints off, on and on/off.

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
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():  # interleaved
            t = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
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
    for name, fns in ((f"EM N={a.n} iters={a.iters}", em), (f"fit_batch B={a.batch} (10 chunks)", fb)):
        for f in fns.values():
            jax.block_until_ready(f())  # compile
        t = best(fns, a.repeats)
        print(f"{name}: off {t['off']:.4f} s, on {t['on']:.4f} s, on/off {t['on'] / t['off']:.3f}")


if __name__ == "__main__":
    main()
