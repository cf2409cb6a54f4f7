"""mlejax's compile options (``mlejax._jit.compiler_options``) against XLA's defaults.

Each case runs in a fresh process, alternately with ``MLEJAX_FAST_COMPILE=0`` (XLA's
defaults: the peer) and ``=1`` (mlejax's quick-compile options), ``--rounds`` times;
it prints the first call (compilation included) and the best warm call of each, and
the ratio default / quick (above 1: the options are faster).

Run:  python benchmarks/bench_compile_options.py [--rounds 2] [--only gmm,hmm,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = """
import json, time, jax, numpy as np, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import mlejax as mj
def timed(fn, warm=3):
    t = time.perf_counter(); jax.block_until_ready(fn()); first = time.perf_counter() - t
    ws = []
    for _ in range(warm):
        t = time.perf_counter(); jax.block_until_ready(fn()); ws.append(time.perf_counter() - t)
    print(json.dumps({"first": first, "warm": min(ws)}))
"""

CASES = {
    "weibull": """
from mlejax.datasets import censored_weibull
d = censored_weibull(n=50_000, seed=0)
data = {k: d[k] for k in ("X", "t", "event")}
def ll(p, d):
    k = jnp.exp(p["log_k"]); z = (jnp.log(d["t"]) - d["X"] @ p["beta"]) * k
    return jnp.sum(d["event"] * (jnp.log(k) - jnp.log(d["t"]) + z) - jnp.exp(z))
timed(lambda: mj.fit(ll, {"beta": jnp.zeros(d["X"].shape[1]), "log_k": 0.0}, data))
""",
    "gmm": """
rng = np.random.default_rng(0)
x = rng.standard_normal((50_000, 4)) + rng.integers(0, 5, 50_000)[:, None] * 2.0
timed(lambda: mj.em(mj.GaussianMixture(5), x, tol=0, maxiter=30, stderr=False))
""",
    "gmm_small": """
rng = np.random.default_rng(0)
x = rng.standard_normal((2_000, 2)) + rng.integers(0, 3, 2_000)[:, None] * 3.0
timed(lambda: mj.em(mj.GaussianMixture(3), x))
""",
    "hmm": """
rng = np.random.default_rng(6)
x = [rng.normal(size=100) + 3 * (np.arange(100) // 25 % 2) for _ in range(50)]
timed(lambda: mj.em(mj.GaussianHMM(4, "diag"), x, tol=0, maxiter=5))
""",
    "fit_batch": """
rng = np.random.default_rng(0)
xs = rng.gamma(2.0, 1.5, size=(2000, 200))
def ll(p, x):
    return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["shape"], scale=1.0 / p["rate"]))
timed(lambda: mj.fit_batch(ll, {"shape": mj.Positive(1.0), "rate": mj.Positive(1.0)}, xs))
""",
}


def run(case: str, quick: bool) -> dict:
    env = {**os.environ, "MLEJAX_FAST_COMPILE": "1" if quick else "0", "PYTHONPATH": ROOT}
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(CASES[case])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def quickstart(quick: bool) -> float:
    env = {**os.environ, "MLEJAX_FAST_COMPILE": "1" if quick else "0", "PYTHONPATH": ROOT}
    t = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")], capture_output=True,
                   env=env, timeout=900, check=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default=",".join([*CASES, "quickstart"]))
    args = ap.parse_args()
    for case in args.only.split(","):
        rows = {False: [], True: []}
        for _ in range(args.rounds):
            for quick in (False, True):
                rows[quick].append({"first": quickstart(quick), "warm": float("nan")} if case == "quickstart"
                                   else run(case, quick))
        first = {q: min(r["first"] for r in rows[q]) for q in rows}
        warm = {q: min(r["warm"] for r in rows[q]) for q in rows}
        print(f"{case:11s} first: XLA defaults {first[False]:7.2f} s  mlejax options {first[True]:7.2f} s  "
              f"ratio {first[False] / first[True]:5.2f}x | warm: {warm[False] * 1e3:8.1f} ms vs "
              f"{warm[True] * 1e3:8.1f} ms  ratio {warm[False] / warm[True]:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
