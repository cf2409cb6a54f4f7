"""Cost of issue 11's checks on a single fit: the smoothness check (finite differences
of the gradient over one standard error) that every ``mj.fit`` runs, and the
observation check that ``cov="sandwich"`` runs. Peer: the same fit with the check
switched off (monkeypatched), interleaved, best of several; the first call in a fresh
process (compilation) is timed separately in subprocesses. Two cases: a gamma fit
(n=5,000, k=2) and a logistic regression (N=200,000, k=20, where 2k gradient passes
over the data would cost as much as the fit itself).

    python benchmarks/bench_checks.py [--case gamma|logit]
"""

import subprocess
import sys

CODE = """
import time, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import mlejax as mj, mlejax._fit as F
if {off}:
    F.flag_not_smooth = lambda r, gradients=None: r
rng = np.random.default_rng(0)
if "{case}" == "gamma":
    x = rng.gamma(2.0, 1.0, 5000)
    def ll(p, x):
        return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["a"], scale=1 / p["b"]))
    init = {{"a": mj.Positive(1.0), "b": mj.Positive(1.0)}}
else:
    X = np.column_stack([np.ones(200_000), rng.normal(size=(200_000, 19))])
    x = {{"X": X, "y": (rng.random(200_000) < 1 / (1 + np.exp(-X @ rng.normal(scale=0.3, size=20)))).astype(float)}}
    def ll(b, d):
        eta = d["X"] @ b
        return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))
    init = jnp.zeros(20)
t = time.perf_counter(); mj.fit(ll, init, x); first = time.perf_counter() - t
warm = []
for _ in range(7):
    t = time.perf_counter(); jax.block_until_ready(mj.fit(ll, init, x).stderr); warm.append(time.perf_counter() - t)
print(first, min(warm))
"""


def run(off, case):
    out = subprocess.run([sys.executable, "-c", CODE.format(off=off, case=case)], capture_output=True, text=True,
                         check=True)
    return [float(v) for v in out.stdout.split()]


if __name__ == "__main__":
    case = sys.argv[sys.argv.index("--case") + 1] if "--case" in sys.argv else "gamma"
    firsts, warms = {True: [], False: []}, {True: [], False: []}
    for _ in range(3):
        for off in (True, False):
            f, w = run(off, case)
            firsts[off].append(f)
            warms[off].append(w)
    pf, mf = min(firsts[True]), min(firsts[False])
    pw, mw = min(warms[True]), min(warms[False])
    print(f"case {case}")
    print(f"first call: without check {pf:.3f} s, with check {mf:.3f} s, ratio {mf / pf:.2f}")
    print(f"warm call:  without check {pw * 1e3:.2f} ms, with check {mw * 1e3:.2f} ms, ratio {mw / pw:.2f}")
