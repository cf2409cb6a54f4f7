"""What building fit_batch's Gaussian-process chunk program costs, with and without
mlejax's LAPACK guard (issue 16, part 2): peak RSS growth, time, HLO size. Nothing is
run (the unguarded program can deadlock at run time on jaxlib 0.10.x; compiling it is safe).

    python benchmarks/bench_guard_compile.py --n 100 --B 200 --guard 1
    python benchmarks/bench_guard_compile.py --n 100 --B 200 --guard 0
    python benchmarks/bench_guard_compile.py --n 200 --B 100 --guard 1

One process per measurement (peak RSS is per process). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="GP observations per dataset")
    ap.add_argument("--B", type=int, default=200, help="datasets")
    ap.add_argument("--guard", type=int, default=1, help="1: mlejax's LAPACK guard on, 0: off")
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    from mlejax.backends import _batch

    _batch.needs_lapack_guard = lambda: bool(a.guard)
    _batch._MALLOC_TRIM = _batch._libc_trim()  # as bench_batch_memory.py
    n, rng = a.n, np.random.default_rng(0)
    t = np.linspace(0, 5, n)
    k0 = np.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / 0.8**2) + 0.1 * np.eye(n)
    data = rng.multivariate_normal(np.zeros(n), k0, size=a.B)

    def loglik(p, y):
        k = p["amp"] * jnp.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / p["ls"] ** 2)
        chol = jnp.linalg.cholesky(k + p["noise"] * jnp.eye(n))
        z = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
        return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(chol)))

    init = {"ls": mj.Positive(1.0), "amp": mj.Positive(1.0), "noise": mj.Positive(0.5)}
    build = _batch.compiled_chunks
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()

    def stop(*args, **kw):
        c = build(*args, **kw)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(dict(
            guard=bool(a.guard), n=n, B=a.B, build_s=round(time.perf_counter() - t0, 1),
            growth_mb=round((peak - before) / 1024), budget_mb=_batch._chunk_budget() // 2**20,
            hlo_chars=len(c.as_text()), xla_chunk_mb=round((_batch.chunk_bytes(c) or 0) / 2**20, 1))), flush=True)
        os._exit(0)  # stop before running

    _batch.compiled_chunks = stop
    mj.fit_batch(loglik, init, data)


if __name__ == "__main__":
    main()
