"""Warm single-fit speed of ``bench_core.py``'s censored Weibull regression against its
hand-written jitted Newton, measured in adjacent pairs (one mlejax fit, one hand-written
call, repeated), so that the ratio survives a shared machine's changing load.

Prints, for this tree (``PYTHONPATH``): the best and median wall and CPU times of each
side, the ratio of the best times and the median of the per-pair ratios, and the
number of Newton steps. Run it alternately on two source trees to compare them:

    for t in OLD NEW OLD NEW; do PYTHONPATH=$t python $t/benchmarks/bench_warm_pairs.py; done
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bench_core import hand_newton_weibull, weibull_ll  # noqa: E402

import mlejax as mj  # noqa: E402
from mlejax.datasets import censored_weibull  # noqa: E402


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--path", choices=("auto", "host", "compiled"), default="auto",
                    help="force the host-driven or the compiled single fit (trees that have both)")
    args = ap.parse_args()
    if args.path != "auto":
        from mlejax import _fit

        _fit.HOST_MAX_DATA_ELEMENTS = 2**62 if args.path == "host" else 0
    d = censored_weibull(n=args.n, seed=0)
    data = {k: jnp.asarray(d[k]) for k in ("X", "t", "event")}
    init = {"beta": jnp.zeros(d["X"].shape[1]), "log_k": 0.0}

    def mlejax():
        return jax.block_until_ready(mj.fit(weibull_ll, init, data).stderr)

    def hand():
        return jax.block_until_ready(hand_newton_weibull(data["X"], data["t"], data["event"]))

    res = mj.fit(weibull_ll, init, data)
    hand()
    m, h = [], []
    for _ in range(args.pairs):
        m.append(timed(mlejax))
        h.append(timed(hand))
    m, h = np.array(m) * 1e3, np.array(h) * 1e3
    pair = m / h
    print(f"{mj.__file__}: path {args.path}, N={args.n}, {int(res.n_iter)} Newton steps, {args.pairs} pairs, "
          f"load {os.getloadavg()[0]:.1f}")
    for i, what in enumerate(("wall", "CPU")):
        print(f"  {what}: mlejax best {m[:, i].min():.1f} ms (median {np.median(m[:, i]):.1f}), "
              f"hand best {h[:, i].min():.1f} ms (median {np.median(h[:, i]):.1f}); "
              f"mlejax/hand: ratio of bests {m[:, i].min() / h[:, i].min():.3f}, "
              f"median pair ratio {np.median(pair[:, i]):.3f}")


if __name__ == "__main__":
    main()
