"""Warm single fits: ``method="trust-region"`` against the default Newton (issue 13).

Two well-behaved models (a Normal, n=200; a Poisson regression, n=2,000, k=4), each
fitted warm ``--repeat`` times per method, the methods interleaved; prints the best
and median time of each, the steps taken and the ratio trust-region / Newton. Run it
with ``PYTHONPATH`` pointing at two trees to compare Newton before/after a change.

    .venv/bin/python benchmarks/bench_trust_region.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.scipy import stats  # noqa: E402

import mlejax as mj  # noqa: E402


def normal_ll(p, x):
    return jnp.sum(stats.norm.logpdf(x, p["mu"], p["sigma"]))


def poisson_ll(b, d):
    eta = d["X"] @ b
    return jnp.sum(d["y"] * eta - jnp.exp(eta))


def cases():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, 200)
    X = np.column_stack([np.ones(2000), rng.normal(size=(2000, 3))])
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, -0.2, 0.1])))
    return {
        "Normal, n=200": (normal_ll, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x),
        "Poisson regression, n=2000, k=4": (poisson_ll, jnp.zeros(4), {"X": X, "y": y}),
    }


def main(repeat: int) -> None:
    print(f"{'case':<34} {'method':<13} {'best':>9} {'median':>9} {'steps':>6}")
    for name, (ll, init, data) in cases().items():
        times = {m: [] for m in ("newton", "trust-region")}
        steps = {}
        for m in times:  # compile
            steps[m] = int(mj.fit(ll, init, data, method=m).n_iter)
        for _ in range(repeat):
            for m in times:
                t = time.perf_counter()
                mj.fit(ll, init, data, method=m)
                times[m].append(time.perf_counter() - t)
        for m, ts in times.items():
            print(f"{name:<34} {m:<13} {min(ts) * 1e3:7.2f}ms {np.median(ts) * 1e3:7.2f}ms {steps[m]:>6}")
        print(f"{'':<34} ratio trust-region / newton (best): {min(times['trust-region']) / min(times['newton']):.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=30)
    main(ap.parse_args().repeat)
