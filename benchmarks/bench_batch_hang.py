"""fit_batch with Cholesky / triangular solves: every run finishes (issue 16, part 1).

jaxlib 0.10.0-0.11.0 can deadlock in batched CPU LAPACK calls (see mlejax/backends/_lapack.py
and benchmarks/README.md). Each run is a fresh subprocess under a timeout (a hang uses no CPU
but never returns). ``--baseline`` turns mlejax's guard off, to time today's runs (those that
finish) and count the hangs.

    python benchmarks/bench_batch_hang.py --runs 30              # guarded (default options)
    python benchmarks/bench_batch_hang.py --runs 5 --baseline    # unguarded, for comparison
    python benchmarks/bench_batch_hang.py --one mvn               # one run in this process

MLEJAX_HANG_MVN_B / MLEJAX_HANG_GP_B set the batch sizes (default 500 / 200), and
MLEJAX_HANG_CACHE=/some/dir keeps compiled programs between runs (the first run of each
model compiles; the rest load it), which makes 30 runs affordable on a small machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

MVN_B = int(os.environ.get("MLEJAX_HANG_MVN_B", 500))
GP_B = int(os.environ.get("MLEJAX_HANG_GP_B", 200))
GP_N = 50
CACHE = os.environ.get("MLEJAX_HANG_CACHE", "")  # a compilation-cache folder: runs after the first skip compiling


def run_one(model: str, baseline: bool) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    if CACHE:  # the hang is at run time: a compiled program from the cache hangs the same way
        jax.config.update("jax_compilation_cache_dir", CACHE)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    import mlejax as mj
    import mlejax.backends._batch as batch

    if baseline:
        batch.needs_lapack_guard = lambda: False
    rng = np.random.default_rng(0)
    if model == "mvn":
        data = rng.multivariate_normal([0, 1], [[1, 0.5], [0.5, 2]], size=(MVN_B, 100))

        def loglik(p, x):
            chol = jnp.array([[p["l11"], 0.0], [p["l21"], p["l22"]]])
            return jnp.sum(jax.scipy.stats.multivariate_normal.logpdf(x, p["m"], chol @ chol.T))

        init = {"m": jnp.zeros(2), "l11": mj.Positive(1.0), "l21": 0.0, "l22": mj.Positive(1.0)}
    else:
        t = np.linspace(0, 5, GP_N)
        k0 = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / 0.8**2) + 0.1 * np.eye(GP_N)
        data = rng.multivariate_normal(np.zeros(GP_N), k0, size=GP_B)

        def loglik(p, y):
            k = p["amp"] * jnp.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / p["ls"] ** 2)
            chol = jnp.linalg.cholesky(k + p["noise"] * jnp.eye(GP_N))
            a = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
            return -0.5 * a @ a - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * GP_N * jnp.log(2 * jnp.pi)

        init = {"ls": mj.Positive(1.0), "amp": mj.Positive(1.0), "noise": mj.Positive(0.5)}
    t0 = time.perf_counter()
    res = mj.fit_batch(loglik, init, data)
    jax.block_until_ready(res.loglik)
    print(f"RESULT {time.perf_counter() - t0:.3f} {res.status_counts().get('SUCCESS', 0)}", flush=True)


def run_many(model: str, runs: int, timeout: float, baseline: bool) -> None:
    times, hangs = [], 0
    for i in range(runs):
        cmd = [sys.executable, __file__, "--one", model] + (["--baseline"] if baseline else [])
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            hangs += 1
            print(f"{model} run {i}: no result after {timeout:.0f} s (hang)", flush=True)
            continue
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
        if out.returncode or not line:
            print(f"{model} run {i}: failed rc={out.returncode}\n{out.stderr[-2000:]}", flush=True)
            hangs += 1
            continue
        fit_s, ok = line[0].split()[1:]
        times.append(float(fit_s))
        print(f"{model} run {i}: fit_batch {float(fit_s):.1f} s, process {time.perf_counter() - t0:.1f} s, "
              f"{ok} SUCCESS", flush=True)
    med = statistics.median(times) if times else float("nan")
    print(f"SUMMARY {model} {'baseline' if baseline else 'guarded'}: {len(times)}/{runs} finished, "
          f"{hangs} hung/failed, fit_batch median {med:.1f} s, min {min(times, default=float('nan')):.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--models", default="mvn,gp")
    ap.add_argument("--baseline", action="store_true", help="mlejax's LAPACK guard off")
    ap.add_argument("--one", choices=("mvn", "gp"))
    a = ap.parse_args()
    if a.one:
        run_one(a.one, a.baseline)
        return
    for model in a.models.split(","):
        run_many(model, a.runs, a.timeout, a.baseline)


if __name__ == "__main__":
    main()
