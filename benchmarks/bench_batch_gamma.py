"""Batch fitting benchmark: B datasets of n gamma draws, fit (shape, rate) with SEs.

Three ways, same data, same run:

1. scipy.stats.gamma.fit(x, floc=0) in a Python loop, standard errors from the
   closed-form observed information (timed on a subset, extrapolated per fit);
2. mj.fit_batch (Newton, exact autodiff information, per-fit status), warm;
3. a hand-written jitted ``vmap`` Newton on (log shape, log rate) with a
   ``while_loop``, standard errors from the autodiff Hessian (the peer a JAX user
   would write), warm.

The peak memory of mj.fit_batch is measured in a child process (ru_maxrss, host
RSS) so the other methods do not count; on an accelerator the device's peak bytes
are printed too.

Run from the repository root (no install needed; the repo root goes on sys.path):

    python benchmarks/bench_batch_gamma.py --B 2000
    python benchmarks/bench_batch_gamma.py --B 100000
    python benchmarks/bench_batch_gamma.py --B 1000000 --device gpu --scipy-fits 300
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--B", type=int, default=2000, help="number of datasets (fits)")
    p.add_argument("--n", type=int, default=200, help="observations per dataset")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="JAX platform: cpu, gpu (CUDA), or auto (JAX's default)")
    p.add_argument("--scipy-fits", type=int, default=500,
                   help="scipy fits timed to extrapolate the loop (0: skip scipy)")
    p.add_argument("--repeats", type=int, default=5,
                   help="warm rounds, interleaved (the best of each method is reported)")
    p.add_argument("--batch-size", type=int, default=None, help="fit_batch batch_size (default auto)")
    p.add_argument("--no-hand", action="store_true", help="skip the hand-written vmap Newton")
    p.add_argument("--no-memory", action="store_true", help="skip the child-process memory run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.device == "cpu":
    os.environ["JAX_PLATFORMS"] = "cpu"
elif ARGS.device == "gpu":
    os.environ["JAX_PLATFORMS"] = "cuda"
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.scipy.special import gammaln  # noqa: E402

jax.config.update("jax_enable_x64", True)  # a benchmark script: float64 for inference

import mlejax as mj  # noqa: E402

SHAPE, RATE = 2.5, 1.5


def make_data(b, n, seed):
    rng = np.random.default_rng(seed)
    return rng.gamma(SHAPE, 1.0 / RATE, size=(b, n))


def gamma_loglik(p, x):
    a, b = p["shape"], p["rate"]
    n = x.shape[0]
    return n * (a * jnp.log(b) - gammaln(a)) + (a - 1.0) * jnp.sum(jnp.log(x)) - b * jnp.sum(x)


def moments_start(x):
    m, v = jnp.mean(x), jnp.var(x)
    return {"shape": mj.Positive(m * m / v), "rate": mj.Positive(m / v)}


def run_mlejax(x, batch_size=None):
    res = mj.fit_batch(gamma_loglik, None, x, init_fn=moments_start, batch_size=batch_size)
    jax.block_until_ready(res.stderr)
    return res


# -- the hand-written peer: jitted vmap Newton on (log a, log b) --------------------


def _hand_one(x):
    n = x.shape[0]

    def negll(u):
        return -gamma_loglik({"shape": jnp.exp(u[0]), "rate": jnp.exp(u[1])}, x)

    m, v = jnp.mean(x), jnp.var(x)
    u0 = jnp.log(jnp.array([m * m / v, m / v]))
    vg = jax.value_and_grad(negll)
    hess = jax.hessian(negll)

    def scaled(u, f, g):
        return jnp.max(jnp.abs(g) * jnp.maximum(jnp.abs(u), 1.0)) / jnp.maximum(jnp.abs(f), 1.0)

    def cond(s):
        u, f, g, it = s
        return (scaled(u, f, g) > 1e-10) & (it < 100)

    def body(s):
        u, f, g, it = s
        u = u - jnp.linalg.solve(hess(u), g)
        f, g = vg(u)
        return u, f, g, it + 1

    f0, g0 = vg(u0)
    u, f, g, it = jax.lax.while_loop(cond, body, (u0, f0, g0, 0))
    theta = jnp.exp(u)
    info = -jax.hessian(lambda t: gamma_loglik({"shape": t[0], "rate": t[1]}, x))(theta)
    se = jnp.sqrt(jnp.diag(jnp.linalg.inv(info)))
    del n
    return theta, se, -f, it


hand_batch = jax.jit(jax.vmap(_hand_one))


def run_hand(x):
    out = hand_batch(x)
    jax.block_until_ready(out)
    return out


# -- scipy ------------------------------------------------------------------------


def run_scipy(x):
    from scipy import special, stats

    n = x.shape[1]
    est, se = [], []
    for xi in x:
        a, _, scale = stats.gamma.fit(xi, floc=0)
        b = 1.0 / scale
        info = n * np.array([[special.polygamma(1, a), -1.0 / b], [-1.0 / b, a / b**2]])
        est.append((a, b))
        se.append(np.sqrt(np.diag(np.linalg.inv(info))))
    return np.array(est), np.array(se)


def timed(fn, *args, repeats=1, **kw):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def device_peak():
    try:
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    except Exception:  # noqa: BLE001
        return None


def child_main(args):
    """Only mj.fit_batch, cold then warm, for a clean peak-memory figure."""
    x = make_data(args.B, args.n, args.seed)
    t_cold, res = timed(run_mlejax, x, args.batch_size)
    t_warm, res = timed(run_mlejax, x, args.batch_size)
    out = {
        "cold_s": t_cold,
        "warm_s": t_warm,
        "n_converged": res.n_converged,
        "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "device_peak_bytes": device_peak(),
    }
    print("CHILD_JSON " + json.dumps(out))


def main(args):
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), jax {jax.__version__}, "
          f"B={args.B}, n={args.n}, cpu count={os.cpu_count()}")
    x = make_data(args.B, args.n, args.seed)
    rows = {}

    # Cold calls (compilation) first; then the warm timings interleaved round by round
    # (best of --repeats each), so that drifting load on a shared machine hits all alike.
    t_cold, res = timed(run_mlejax, x, args.batch_size)
    if not args.no_hand:
        t_hcold, _ = timed(run_hand, x)
    m = min(args.scipy_fits, args.B)
    if m > 0:
        run_scipy(x[:2])  # import and warm up
    t_mj = t_hand = t_sub = np.inf
    for _ in range(args.repeats):
        t, res = timed(run_mlejax, x, args.batch_size)
        t_mj = min(t_mj, t)
        if not args.no_hand:
            t, (theta, se, _, _) = timed(run_hand, x)
            t_hand = min(t_hand, t)
        if m > 0:
            t, (est_sp, se_sp) = timed(run_scipy, x[:m])
            t_sub = min(t_sub, t)

    est_mj = np.stack([np.asarray(res.params["shape"]), np.asarray(res.params["rate"])], 1)
    se_mj = np.stack([np.asarray(res.stderr["shape"]), np.asarray(res.stderr["rate"])], 1)
    rows["mlejax"] = t_mj
    print(f"mj.fit_batch      cold {t_cold:9.3f} s   warm {t_mj:9.4f} s   "
          f"({1e6 * t_mj / args.B:8.2f} us/fit)   converged {res.n_converged}/{args.B}")
    print(f"   status counts: {res.status_counts()}")

    if not args.no_hand:
        rows["hand"] = t_hand
        d_est = np.max(np.abs(np.asarray(theta) - est_mj) / np.abs(est_mj))
        d_se = np.max(np.abs(np.asarray(se) - se_mj) / np.abs(se_mj))
        print(f"hand vmap Newton  cold {t_hcold:9.3f} s   warm {t_hand:9.4f} s   "
              f"({1e6 * t_hand / args.B:8.2f} us/fit)   max rel diff vs mlejax: "
              f"est {d_est:.2e}, se {d_se:.2e}")

    if m > 0:
        per = t_sub / m
        t_sp = per * args.B
        rows["scipy"] = t_sp
        d_est = np.max(np.abs(est_sp - est_mj[:m]) / np.abs(est_mj[:m]))
        d_se = np.max(np.abs(se_sp - se_mj[:m]) / np.abs(se_mj[:m]))
        print(f"scipy loop        {m} fits {t_sub:.3f} s -> {1e6 * per:8.1f} us/fit, "
              f"extrapolated to B: {t_sp:9.2f} s   max rel diff vs mlejax: est {d_est:.2e}, "
              f"se {d_se:.2e}")

    print("ratios (warm):")
    if "scipy" in rows:
        print(f"   scipy loop / mj.fit_batch      = {rows['scipy'] / rows['mlejax']:8.1f}x")
    if "hand" in rows:
        print(f"   mj.fit_batch / hand vmap Newton = {rows['mlejax'] / rows['hand']:8.3f}x")

    if not args.no_memory:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--B", str(args.B),
               "--n", str(args.n), "--device", args.device, "--seed", str(args.seed)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD_JSON ")]
        if proc.returncode != 0 or not line:
            print("memory child failed:", proc.returncode, proc.stderr[-2000:])
        else:
            c = json.loads(line[0][len("CHILD_JSON "):])
            msg = (f"mj.fit_batch alone (child process): cold {c['cold_s']:.3f} s, warm "
                   f"{c['warm_s']:.3f} s, peak RSS {c['maxrss_bytes'] / 2**30:.3f} GiB")
            if c["device_peak_bytes"]:
                msg += f", device peak {c['device_peak_bytes'] / 2**30:.3f} GiB"
            print(msg)


if __name__ == "__main__":
    if ARGS.child:
        child_main(ARGS)
    else:
        main(ARGS)
