"""Where should a single fit switch from the host-driven loop to the compiled loop?

For each data size, two fresh processes per round (host path forced / compiled path
forced, by setting ``mlejax._fit.HOST_MAX_DATA_ELEMENTS``): the first ``mj.fit`` of the
censored Weibull regression of ``bench_core.py`` (compilation included; imports and data
outside the timed region), then the best of ``--warm`` warm calls. Wall and CPU time
(process time, all threads). Rounds alternate the two paths.

Run:  python benchmarks/bench_host_switch.py --sizes 5000,20000,50000,100000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    from mlejax import _fit
    from mlejax.datasets import censored_weibull
    from bench_core import weibull_ll
    _fit.HOST_MAX_DATA_ELEMENTS = {limit}
    d = censored_weibull(n={n}, seed=0)
    data = {{k: jnp.asarray(d[k]) for k in ("X", "t", "event")}}
    init = {{"beta": jnp.zeros(d["X"].shape[1]), "log_k": 0.0}}

    def run():
        res = mj.fit(weibull_ll, init, data)
        jax.block_until_ready(res.stderr)
        return res

    w0, c0 = time.perf_counter(), time.process_time()
    res = run()
    first = (time.perf_counter() - w0, time.process_time() - c0)
    assert bool(res.converged), res.message
    warm = []
    for _ in range({warm}):
        w0, c0 = time.perf_counter(), time.process_time()
        run()
        warm.append((time.perf_counter() - w0, time.process_time() - c0))
    print(json.dumps(dict(first=first, warm_wall=min(w for w, _ in warm), warm_cpu=min(c for _, c in warm))))
    """
)


def child(n, path, warm):
    limit = 2**62 if path == "host" else 0
    script = CHILD.format(root=os.path.dirname(HERE), here=HERE, n=n, limit=limit, warm=warm)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000,50000,100000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=int, default=15)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    got = {(n, p): [] for n in sizes for p in ("host", "compiled")}
    for r in range(args.rounds):
        for n in sizes:
            for p in (("host", "compiled") if r % 2 == 0 else ("compiled", "host")):
                got[n, p].append(child(n, p, args.warm))
    print(f"load average {os.getloadavg()[0]:.2f}; best over {args.rounds} rounds (median in brackets)")
    print("| N (data elements) | path | first call wall | first call CPU | warm wall | warm CPU |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for p in ("host", "compiled"):
            rs = got[n, p]
            fw = [r["first"][0] for r in rs]
            fc = [r["first"][1] for r in rs]
            ww = [r["warm_wall"] * 1e3 for r in rs]
            wc = [r["warm_cpu"] * 1e3 for r in rs]
            print(f"| {n:,} ({8 * n:,}) | {p} | {min(fw):.2f} s ({np.median(fw):.2f}) | {min(fc):.2f} s ({np.median(fc):.2f}) "
                  f"| {min(ww):.1f} ms ({np.median(ww):.1f}) | {min(wc):.1f} ms ({np.median(wc):.1f}) |")


if __name__ == "__main__":
    main()
