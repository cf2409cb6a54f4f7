"""Cost of issue 11's checks on a single fit: the smoothness check (finite differences
of the gradient over one standard error) that every ``mj.fit`` runs, and the
observation check that ``cov="sandwich"`` runs. Peer: the same fit with the check
switched off (monkeypatched), interleaved, best of several; the first call in a fresh
process (compilation) is timed separately in subprocesses.

    python benchmarks/bench_checks.py
"""

import subprocess
import sys

CODE = """
import time, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import mlejax as mj, mlejax._fit as F
if {off}:
    F.flag_not_smooth = lambda r: r
x = np.random.default_rng(0).gamma(2.0, 1.0, 5000)
def ll(p, x):
    return jnp.sum(jax.scipy.stats.gamma.logpdf(x, p["a"], scale=1 / p["b"]))
init = {{"a": mj.Positive(1.0), "b": mj.Positive(1.0)}}
t = time.perf_counter(); mj.fit(ll, init, x); first = time.perf_counter() - t
warm = []
for _ in range(7):
    t = time.perf_counter(); mj.fit(ll, init, x).stderr["a"].block_until_ready(); warm.append(time.perf_counter() - t)
print(first, min(warm))
"""


def run(off):
    out = subprocess.run([sys.executable, "-c", CODE.format(off=off)], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


if __name__ == "__main__":
    firsts, warms = {True: [], False: []}, {True: [], False: []}
    for _ in range(3):
        for off in (True, False):
            f, w = run(off)
            firsts[off].append(f)
            warms[off].append(w)
    pf, mf = min(firsts[True]), min(firsts[False])
    pw, mw = min(warms[True]), min(warms[False])
    print(f"first call: without check {pf:.3f} s, with check {mf:.3f} s, ratio {mf / pf:.2f}")
    print(f"warm call:  without check {pw * 1e3:.2f} ms, with check {mw * 1e3:.2f} ms, ratio {mw / pw:.2f}")
