"""Multi-start fits: ``mj.fit(..., starts=16)`` (one compiled, vmapped call) against a
Python loop of 16 single ``mj.fit`` calls from the same starts, and against the usual
scipy recipe (a loop of ``scipy.optimize.minimize(method="BFGS")`` with a jitted JAX
value-and-gradient). A two-component normal mixture written by hand as one
log-likelihood (5 parameters, n = 2000). Warm times, best of several, interleaved.

    .venv/bin/python benchmarks/bench_starts.py
"""

from __future__ import annotations

import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import mlejax as mj  # noqa: E402

S = 16


def loglik(p, x):
    w = jax.nn.sigmoid(p["logit_w"])
    a = jnp.log(w) + jax.scipy.stats.norm.logpdf(x, p["mu"][0], p["sigma"][0])
    b = jnp.log1p(-w) + jax.scipy.stats.norm.logpdf(x, p["mu"][1], p["sigma"][1])
    return jnp.sum(jnp.logaddexp(a, b))


def main():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-1.0, 1.0, 1200), rng.normal(2.5, 0.7, 800)]
    init = {"logit_w": 0.0, "mu": np.array([-0.5, 0.5]), "sigma": mj.Positive(np.ones(2))}
    key = jax.random.key(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)
        res = mj.fit(loglik, init, x, starts=S, key=key)  # compile
    # the same starting points for the peers: the stack mj.fit drew
    from mlejax._constraints import parametrize
    from mlejax._starts import start_values

    spec, dyn = parametrize(init)
    vals = start_values(S, key, spec, dyn)
    starts = [spec.unflatten_leaves([np.asarray(v[i]) for v in vals]) for i in range(S)]
    inits = [{"logit_w": float(s["logit_w"]), "mu": s["mu"], "sigma": mj.Positive(s["sigma"])} for s in starts]

    def flat(s):
        return np.r_[s["logit_w"], s["mu"], np.log(s["sigma"])]

    def nll(v, x):
        return -loglik({"logit_w": v[0], "mu": v[1:3], "sigma": jnp.exp(v[3:5])}, x)

    vg = jax.jit(jax.value_and_grad(nll))
    xj = jnp.asarray(x)

    def run_mj():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mj.MLEJaxWarning)
            return float(mj.fit(loglik, init, x, starts=S, key=key).loglik)

    def run_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mj.MLEJaxWarning)
            return max(float(mj.fit(loglik, i, x).loglik) for i in inits)

    def run_scipy():
        best = -np.inf
        for s in starts:
            r = scipy.optimize.minimize(lambda v: tuple(np.asarray(a) for a in vg(v, xj)), flat(s), jac=True,
                                        method="BFGS")
            best = max(best, -r.fun)
        return best

    lls = {f.__name__: f() for f in (run_mj, run_loop, run_scipy)}  # warm up every path
    times = {k: [] for k in lls}
    for _ in range(5):
        for f in (run_mj, run_loop, run_scipy):
            t = time.perf_counter()
            f()
            times[f.__name__].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"best loglik: mj starts={S} {lls['run_mj']:.6f}, loop of mj.fit {lls['run_loop']:.6f}, "
          f"scipy BFGS loop {lls['run_scipy']:.6f}")
    print(res.starts)
    for peer in ("run_loop", "run_scipy"):
        print(f"{peer:>10}: {best[peer] * 1e3:8.1f} ms   mj.fit(starts={S}): {best['run_mj'] * 1e3:8.1f} ms   "
              f"ratio peer/mlejax {best[peer] / best['run_mj']:.2f}")


if __name__ == "__main__":
    main()
