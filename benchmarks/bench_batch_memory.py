"""fit_batch chunk sizes from XLA's memory analysis: peak memory within 2x of the budget
(issue 16, part 2).

Each measurement runs in a fresh child process: peak RSS (ru_maxrss) and its growth over
the RSS just before fit_batch, the first-call and warm times, and the chunk mlejax chose.

    python benchmarks/bench_batch_memory.py                       # default chunking
    python benchmarks/bench_batch_memory.py --batch-size 100      # a hand-picked chunk
    python benchmarks/bench_batch_memory.py --cases pairwise --B 3000
    python benchmarks/bench_batch_memory.py --cases pairwise --B 600 --no-warm --no-trim   # without malloc_trim
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def child(case: str, b: int, batch_size: int | None, warm: bool = True, trim: bool = True) -> None:
    import resource
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    from mlejax.backends import _batch

    # trim: hand what the compiler freed back to the OS (on by default in the library; MLEJAX_MALLOC_TRIM=0 turns it off);
    # otherwise keep it (glibc's default)
    _batch._MALLOC_TRIM = _batch._libc_trim() if trim else None

    rng = np.random.default_rng(0)
    if case == "pairwise":
        n = 300
        data = rng.normal(1.0, 2.0, size=(b, n))

        def loglik(p, x):  # a pairwise composite likelihood: x_i + x_j ~ N(2 mu, 2 sigma^2)
            s = x[:, None] + x[None, :]
            return 0.5 * jnp.sum(jax.scipy.stats.norm.logpdf(s, 2 * p["mu"], jnp.sqrt(2.0) * p["sigma"]))

        init = {"mu": 0.0, "sigma": mj.Positive(1.0)}
    else:
        n = int(case[2:])
        t = np.linspace(0, 5, n)
        k0 = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / 0.8**2) + 0.1 * np.eye(n)
        data = rng.multivariate_normal(np.zeros(n), k0, size=b)

        def loglik(p, y):
            k = p["amp"] * jnp.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / p["ls"] ** 2)
            chol = jnp.linalg.cholesky(k + p["noise"] * jnp.eye(n))
            a = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
            return -0.5 * a @ a - jnp.sum(jnp.log(jnp.diag(chol)))

        init = {"ls": mj.Positive(1.0), "amp": mj.Positive(1.0), "noise": mj.Positive(0.5)}
    stages = []  # peak RSS (MB) when each chunk program is ready: compilation's share of the peak
    compiled_chunks = _batch.compiled_chunks

    def traced(*args, **kw):
        out = compiled_chunks(*args, **kw)
        stages.append(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        return out

    _batch.compiled_chunks = traced
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    res = mj.fit_batch(loglik, init, data, batch_size=batch_size)
    jax.block_until_ready(res.loglik)
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    if warm:
        jax.block_until_ready(mj.fit_batch(loglik, init, data, batch_size=batch_size).loglik)
    warm = time.perf_counter() - t0 if warm else float("nan")
    compiled = next(reversed(_batch._COMPILED.values()))
    chunk_text = compiled.as_text()
    print("RESULT " + json.dumps(dict(
        case=case, B=b, batch_size=batch_size, first_s=round(first, 2), warm_s=round(warm, 2),
        rss_before_mb=round(before / 2**20), peak_rss_mb=round(peak / 2**20),
        growth_mb=round((peak - before) / 2**20), budget_mb=_batch._chunk_budget() // 2**20,
        xla_chunk_mb=round((_batch.chunk_bytes(compiled) or 0) / 2**20, 1),
        hlo_chars=len(chunk_text), converged=int(np.sum(res.converged)),
        peak_after_compile_mb=stages[:2])), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="pairwise,gp100,gp200")
    ap.add_argument("--B", type=int, default=0, help="fits per case (default: per case)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--no-warm", action="store_true", help="skip the warm call (memory only)")
    ap.add_argument("--no-trim", action="store_true", help="do not hand freed memory back after compiling")
    ap.add_argument("--child", nargs=5)
    a = ap.parse_args()
    if a.child:
        case, b, bs, warm, trim = a.child
        child(case, int(b), None if bs == "None" else int(bs), warm == "1", trim == "1")
        return
    default_b = {"pairwise": 3000, "gp100": 200, "gp200": 100}
    for case in a.cases.split(","):
        b = a.B or default_b[case]
        flags = [str(int(not a.no_warm)), str(int(not a.no_trim))]
        out = subprocess.run([sys.executable, __file__, "--child", case, str(b), str(a.batch_size), *flags],
                             capture_output=True, text=True, timeout=3000)
        lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
        print(lines[0][7:] if lines else f"{case}: failed\n{out.stderr[-3000:]}", flush=True)


if __name__ == "__main__":
    main()
