"""mj.glm's X'WX Hessian against its autodiff Hessian and statsmodels, on a large design.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_glm_xwx.py [--n 200000] [--p 100] [--repeat 5]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_glm_xwx.py --first-call [--repeat 3]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_glm_xwx.py --per-iteration [--repeat 5]

For each model (logistic, probit and Poisson regression on simulated data, n rows
and p columns with an intercept): the warm time of ``mj.glm`` with ``hessian="xwx"``
(the default: ``X' W X`` by one matrix product), with ``hessian="autodiff"`` (the
generic forward-over-reverse Hessian) and statsmodels' Newton (``Logit``/``Probit``/
``Poisson(...).fit(method="newton")``), run interleaved, best of ``--repeat`` (the
machine is shared: the minimum is the least disturbed run), the ratios, and the
largest differences between the two mlejax paths (params, standard errors, loglik).
First calls (compilation included) are printed separately; ``--first-call`` instead
times the first ``mj.glm`` call of a small model (n=5,000, p=4) in fresh processes,
both Hessians, interleaved, best of ``--repeat``: compilation dominates it. Besides wall time the
process CPU time (user + system, all threads) is reported: on an oversubscribed
machine it is the steadier measure of the work done.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import statsmodels.api as sm  # noqa: E402
from scipy.special import ndtr  # noqa: E402

import mlejax as mj  # noqa: E402

PEERS = {"logit": sm.Logit, "probit": sm.Probit, "poisson": sm.Poisson}


def simulate(model, n, p, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    eta = x @ rng.normal(0, 0.5 / np.sqrt(p), p)
    if model == "poisson":
        return rng.poisson(np.exp(eta)).astype(float), x
    prob = 1 / (1 + np.exp(-eta)) if model == "logit" else ndtr(eta)
    return (rng.random(n) < prob).astype(float), x


def contenders(model, y, x):
    def glm(hessian):
        def run():
            res = mj.glm(y, x, model, hessian=hessian)
            jax.block_until_ready(res.stderr)
            return res
        return run

    def peer():
        return PEERS[model](y, x).fit(method="newton", disp=0, tol=1e-10, maxiter=100)

    return {"mlejax xwx": glm("xwx"), "mlejax autodiff": glm("autodiff"), "statsmodels newton": peer}


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


def main(n, p, repeat, models):
    warnings.simplefilter("ignore")
    print(f"n={n}, p={p}, best of {repeat} (interleaved); 2-core machine shared with other jobs\n")
    print("| model | contender | first call | warm wall (best) | warm CPU (best) | autodiff / xwx wall (CPU) | "
          "statsmodels / xwx wall (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        y, x = simulate(model, n, p)
        runs = contenders(model, y, x)
        first, out = {}, {}
        for name, fn in runs.items():
            t0 = time.perf_counter()
            out[name] = fn()
            first[name] = time.perf_counter() - t0
        best, cpu = dict.fromkeys(runs, np.inf), dict.fromkeys(runs, np.inf)
        for _ in range(repeat):
            for name, fn in runs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], time.process_time() - c0)
        a, b = out["mlejax xwx"], out["mlejax autodiff"]
        for name in runs:
            ratios = ""
            if name == "mlejax xwx":
                ratios = " | ".join(f"{best[peer] / best[name]:.2f}x ({cpu[peer] / cpu[name]:.2f}x)"
                                    for peer in ("mlejax autodiff", "statsmodels newton"))
            print(f"| {model} | {name} | {first[name]:.2f} s | {best[name]:.3f} s | {cpu[name]:.3f} s | "
                  f"{ratios or ' |'} |")
        sm_res = out["statsmodels newton"]
        print(f"\n{model}: xwx vs autodiff max |diff| params {np.max(np.abs(flat(a.params) - flat(b.params))):.1e}, "
              f"SEs {np.max(np.abs(flat(a.stderr) - flat(b.stderr))):.1e}, loglik {abs(float(a.loglik - b.loglik)):.1e}; "
              f"vs statsmodels params {np.max(np.abs(flat(a.params) - sm_res.params)):.1e}\n")


FIRST_CALL = """
import time, jax
jax.config.update("jax_enable_x64", True)
import numpy as np, mlejax as mj
rng = np.random.default_rng(1)
x = np.column_stack([np.ones(5000), rng.normal(size=(5000, 3))])
eta = x @ np.array([-0.5, 1.0, -0.5, 0.25]) / 2
y = {{"logit": (rng.random(5000) < 1 / (1 + np.exp(-eta))).astype(float),
      "poisson": rng.poisson(np.exp(eta)).astype(float),
      "negbin": rng.poisson(np.exp(eta) * rng.gamma(2.0, 0.5, 5000)).astype(float)}}["{model}"]
t0 = time.perf_counter()
jax.block_until_ready(mj.glm(y, x, "{model}", hessian="{hessian}").stderr)
print(time.perf_counter() - t0)
"""


def first_calls(repeat, models):
    import subprocess
    import sys

    print("| model | first call, xwx (best) | first call, autodiff (best) | xwx / autodiff |")
    print("|---|---|---|---|")
    for model in models:
        best = {"xwx": np.inf, "autodiff": np.inf}
        for _ in range(repeat):
            for hessian in best:
                code = FIRST_CALL.format(model=model, hessian=hessian)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                best[hessian] = min(best[hessian], float(out.stdout.split()[-1]))
        print(f"| {model} | {best['xwx']:.2f} s | {best['autodiff']:.2f} s | {best['xwx'] / best['autodiff']:.2f} |")


def per_iteration(n, p, repeat, models):
    """Where the time of one compiled fit goes: the warm fit capped at 1-4 Newton
    iterations (``maxiter`` is a run-time value: one program), best of ``repeat``,
    both Hessians interleaved. The slope is the cost of one loop iteration (an
    f, g, H evaluation and the step's logic), the intercept what a fit pays once."""
    warnings.simplefilter("ignore")
    print("| model | hessian | fit, maxiter=1 / 2 / 3 / 4 | per iteration (slope) | once per fit (intercept) |")
    print("|---|---|---|---|---|")
    for model in models:
        y, x = simulate(model, n, p)
        caps = (1, 2, 3, 4)
        best = {(h, m): np.inf for h in ("xwx", "autodiff") for m in caps}
        for h, m in best:
            jax.block_until_ready(mj.glm(y, x, model, hessian=h, maxiter=m).stderr)
        for _ in range(repeat):
            for h, m in best:
                t0 = time.perf_counter()
                jax.block_until_ready(mj.glm(y, x, model, hessian=h, maxiter=m).stderr)
                best[h, m] = min(best[h, m], time.perf_counter() - t0)
        for h in ("xwx", "autodiff"):
            times = [best[h, m] for m in caps]
            slope, intercept = np.polyfit(caps, times, 1)
            print(f"| {model} | {h} | {' / '.join(f'{t:.3f}' for t in times)} s | {slope:.3f} s | {intercept:.3f} s |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default=None)
    ap.add_argument("--first-call", action="store_true")
    ap.add_argument("--per-iteration", action="store_true")
    args = ap.parse_args()
    if args.per_iteration:
        per_iteration(args.n, args.p, args.repeat, (args.models or "logit").split(","))
    elif args.first_call:
        first_calls(args.repeat, (args.models or "logit,poisson,negbin").split(","))
    else:
        main(args.n, args.p, args.repeat, (args.models or "logit,poisson").split(","))
