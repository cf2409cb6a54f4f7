"""fit_batch with Cholesky / triangular solves: every run finishes (issue 16, part 1).

jaxlib 0.10.0-0.11.0 can deadlock in batched CPU LAPACK calls (see mlejax/backends/_lapack.py
and benchmarks/README.md). Each run is a fresh subprocess, watched: a run that uses no CPU
for ``--idle`` seconds is the deadlock (it waits forever without computing) and is killed
and counted. ``--baseline`` turns mlejax's guard off, to time today's runs (those that
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


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime of the process (all threads)


def run_child(cmd, idle: float, timeout: float):
    """(stdout, verdict): verdict "ok", "hang" (no CPU used for ``idle`` seconds: the
    deadlock, which waits without computing), "timeout" or "failed". A slow run on a busy
    machine keeps using CPU and is not called a hang."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = last_change = time.perf_counter()
    ticks = -1
    while proc.poll() is None:
        time.sleep(2.0)
        now = time.perf_counter()
        try:
            t = _cpu_ticks(proc.pid)
        except OSError:
            continue
        if t != ticks:
            ticks, last_change = t, now
        if now - last_change > idle or now - t0 > timeout:
            proc.kill()
            proc.communicate()
            return "", "hang" if now - last_change > idle else "timeout"
    out, err = proc.communicate()
    return out + err, "ok" if proc.returncode == 0 else "failed"


def run_many(model: str, runs: int, idle: float, timeout: float, baseline: bool) -> None:
    times, bad = [], {}
    for i in range(runs):
        cmd = [sys.executable, __file__, "--one", model] + (["--baseline"] if baseline else [])
        t0 = time.perf_counter()
        out, verdict = run_child(cmd, idle, timeout)
        line = [x for x in out.splitlines() if x.startswith("RESULT")]
        if verdict != "ok" or not line:
            bad[verdict] = bad.get(verdict, 0) + 1
            print(f"{model} run {i}: {verdict} after {time.perf_counter() - t0:.0f} s {out[-1500:]}", flush=True)
            continue
        fit_s, ok = line[0].split()[1:]
        times.append(float(fit_s))
        print(f"{model} run {i}: fit_batch {float(fit_s):.1f} s, process {time.perf_counter() - t0:.1f} s, "
              f"{ok} SUCCESS", flush=True)
    warm = times[1:] if CACHE else times  # with a cache, run 0 compiles and the others load
    med = statistics.median(warm) if warm else float("nan")
    print(f"SUMMARY {model} {'baseline' if baseline else 'guarded'}: {len(times)}/{runs} finished, "
          f"not finished {bad or 0}, fit_batch median {med:.1f} s (runs after the first), "
          f"first {times[0] if times else float('nan'):.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds without CPU use that count as a hang")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--models", default="mvn,gp")
    ap.add_argument("--baseline", action="store_true", help="mlejax's LAPACK guard off")
    ap.add_argument("--one", choices=("mvn", "gp"))
    a = ap.parse_args()
    if a.one:
        run_one(a.one, a.baseline)
        return
    for model in a.models.split(","):
        run_many(model, a.runs, a.idle, a.timeout, a.baseline)


if __name__ == "__main__":
    main()
