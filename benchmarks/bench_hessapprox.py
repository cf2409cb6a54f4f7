"""Approximate and exact Hessian-free standard errors on a ~100,000-parameter MLP.

    python benchmarks/bench_hessapprox.py [--n 2000] [--hidden 310] [--rank 10] [--probes 32]

The heteroscedastic MLP of ``bench_minibatch.py`` (10 inputs, two hidden layers of
``--hidden`` tanh units: 100,442 parameters at 310), fitted by a few epochs of
minibatch adam with ``cov=None`` (no inference). Then, all warm (compiled before
timing), interleaved, best of ``--repeats``:

- peer: one Hessian-vector product, hand-written (``jax.jvp`` of ``jax.grad``, jitted);
- ``res.stderr_approx("lanczos", rank=r)``: ``2 r + 10`` Lanczos steps;
- ``res.stderr_approx("diag", probes=m)``: ``m`` probes;
- ``res.stderr_for(name, maxiter=c)``'s solve: CG, capped at ``c`` steps (it stops
  earlier at a direction of non-positive curvature; the steps run are counted).

Each is printed as time and as a ratio to (its number of Hessian-vector products x
the peer's time): the cost of everything around the products. The exact diagonal
(``res.stderr_approx("diag")``) needs k products: its time is the peer's times k,
printed as an estimate, not run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)
import jax.flatten_util  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from bench_minibatch import loglik, make  # noqa: E402

import mlejax as mj  # noqa: E402
from mlejax._hessfree import CG_TOL, _solve  # noqa: E402


def best(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t)
    return min(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=310)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--probes", type=int, default=32)
    ap.add_argument("--cg-steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    data, init = make(a.n, 10, a.hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mj.MLEJaxWarning)
        res = mj.fit(loglik, init, data, method=optax.adam(1e-3), batch_size=256, maxiter=a.epochs, cov=None)
    k = res.nparams
    flat, unravel = jax.flatten_util.ravel_pytree(res.params)
    dev = jax.device_put(data)

    @jax.jit
    def hvp_of(p, d, v):  # data and point as arguments: nothing constant-folded
        return jax.jvp(jax.grad(lambda q: loglik(unravel(q), d)), (p,), (v,))[1]

    v = jax.random.normal(jax.random.key(2), flat.shape, flat.dtype)
    hvp = lambda v: hvp_of(flat, dev, v)  # noqa: E731
    steps = min(k, 2 * a.rank + 10)
    cases = {
        f"lanczos rank {a.rank} ({steps} steps)": (lambda: res.stderr_approx("lanczos", rank=a.rank).variance, steps),
        f"diag, {a.probes} probes": (lambda: res.stderr_approx("diag", probes=a.probes).variance, a.probes),
    }
    rhs = np.zeros((1, k))
    rhs[0, 0] = 1.0
    cg = lambda: _solve(res, rhs, None, CG_TOL, a.cg_steps)  # noqa: E731  res.stderr_for's solve, with n_iter
    cases[f"stderr_for 1 parameter, CG <= {a.cg_steps} steps"] = (cg, int(cg().n_iter[0]))
    print(f"k = {k} free parameters, n = {a.n}; first calls (compilation included):")
    t = time.perf_counter()
    jax.block_until_ready(hvp(v))
    print(f"  hand-written HVP: {time.perf_counter() - t:.2f} s")
    for name, (fn, _) in cases.items():
        t = time.perf_counter()
        jax.block_until_ready(fn())
        print(f"  {name}: {time.perf_counter() - t:.2f} s")
    times = {name: [] for name in cases}
    peer = []
    for _ in range(a.repeats):  # interleaved
        peer.append(best(lambda: hvp(v), 1))
        for name, (fn, _) in cases.items():
            times[name].append(best(fn, 1))
    t_hvp = min(peer)
    print(f"\nwarm, best of {a.repeats}: peer (one hand-written HVP) {t_hvp * 1e3:.1f} ms")
    print(f"{'mlejax':45s} {'time':>10s} {'HVPs':>6s} {'HVPs x peer':>12s} {'ratio':>6s}")
    for name, (_, n_hvp) in cases.items():
        t = min(times[name])
        print(f"{name:45s} {t:9.2f}s {n_hvp:6d} {n_hvp * t_hvp:11.2f}s {t / (n_hvp * t_hvp):6.2f}")
    print(f"exact diagonal (k = {k} HVPs), estimated: {k * t_hvp:.0f} s")
    lz = res.stderr_approx("lanczos", rank=a.rank)
    print(f"\nLanczos eigenvalues: {np.array2string(np.asarray(lz.eigenvalues), precision=4)}")
    print(f"residuals: {np.array2string(np.asarray(lz.residuals), precision=2)}; indefinite: {lz.indefinite}")


if __name__ == "__main__":
    main()
