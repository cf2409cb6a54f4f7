"""Compiled programs: how many a first fit compiles, and what a dropped model leaves behind.

(1) Programs compiled by a first ``fit`` + ``summary()`` + ``conf_int()`` (and a first
``fit_dist``) in a fresh process, with XLA compile time: each eager ``jnp`` op on the
host is a program of its own. (2) Memory maps (``/proc/self/maps``) still held after
fitting 8 distinct models and dropping them, per model, before and after
``mj.clear_caches()``: on Linux every compiled program holds maps, and a process that
reaches ``vm.max_map_count`` (65,530) dies inside the compiler.

    python benchmarks/bench_programs.py            # both parts, each case in a fresh process
    python benchmarks/bench_programs.py --baseline DIR   # also another source tree's mlejax
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

FIRST = textwrap.dedent("""
    import json, sys, time
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    rec = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda e, d, **k: rec.append(d) if e.endswith("backend_compile_duration") else None)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    if sys.argv[1] == "fit":
        x = rng.normal(1, 2, 200)
        r = mj.fit(lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"], p["s"])),
                   {"m": 0.0, "s": mj.Positive(1.0)}, x)
        r.summary(); r.conf_int()
    else:
        r = mj.fit_dist(mj.dist.Normal(), rng.normal(1, 2, 200)); r.summary()
    print(json.dumps({"n": len(rec), "compile": sum(rec), "wall": time.perf_counter() - t0}))
""")

LEAK = textwrap.dedent("""
    import gc, json, os, sys
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    def maps(): return sum(1 for _ in open(f"/proc/{os.getpid()}/maps"))
    x = np.random.default_rng(0).normal(1, 2, 200)
    t = np.linspace(0, 1, 20)
    def run(i):
        def ll(p, x): return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"] + 0 * i, p["s"]))
        init = {"m": 0.0, "s": mj.Positive(1.0)}
        if sys.argv[1] == "fit": mj.fit(ll, init, x)
        elif sys.argv[1] == "curve_fit": mj.curve_fit(lambda th, t: th[0] * jnp.exp(th[1] * t) + 0 * i, t, np.exp(0.5 * t), np.array([1.0, 0.1]))
        else: mj.fit_batch(ll, init, x.reshape(10, 20))
    run(-1); gc.collect(); m0 = maps()
    for i in range(8): run(i)
    gc.collect(); m1 = maps(); mj.clear_caches() if hasattr(mj, "clear_caches") else jax.clear_caches(); m2 = maps()
    print(json.dumps({"kept": (m1 - m0) / 8, "after_clear": (m2 - m0) / 8}))
""")


def child(code, arg, tree):
    env = {**os.environ, "PYTHONPATH": tree, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, timeout=900, cwd=tree)
    if out.returncode:
        return {"error": out.stderr[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="another source tree (its mlejax is run as 'baseline')")
    args = ap.parse_args()
    trees = {"mlejax": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)
    print("(1) first call in a fresh process: programs compiled, XLA compile time, wall")
    for case in ("fit", "fit_dist"):
        for name, tree in trees.items():  # interleaved: the same case for each tree in turn
            r = child(FIRST, case, tree)
            print(f"  {case:9s} {name:9s} " + (f"{r['n']:3d} programs, compile {r['compile']:.2f} s, wall {r['wall']:.2f} s"
                                              if "n" in r else r["error"]))
    print("(2) memory maps still held per dropped model (8 models), and after clear_caches")
    for case in ("fit", "curve_fit", "fit_batch"):
        for name, tree in trees.items():
            r = child(LEAK, case, tree)
            print(f"  {case:9s} {name:9s} " + (f"{r['kept']:7.1f} kept, {r['after_clear']:7.1f} after clear_caches"
                                              if "kept" in r else r["error"]))


if __name__ == "__main__":
    main()
