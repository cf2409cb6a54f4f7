"""mj.clear_caches: compiled programs are released (Linux memory maps, the resource
whose cap kills a process inside XLA), and fits compile again afterwards.

The oracle is the kernel's own count of this process's memory maps
(``/proc/self/maps``), before and after, in a fresh subprocess so that other tests'
programs do not blur the count."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent(
    """
    import gc, json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    from mlejax._jit import map_count
    x = np.random.default_rng(0).normal(1.0, 2.0, 60)
    def model(i):
        return lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"] + 0.0 * i, 2.0))
    mj.fit(model(-1), {"m": 0.0}, x)          # imports and mlejax's shared programs
    mj.fit_batch(model(-1), {"m": 0.0}, x.reshape(3, 20))
    gc.collect(); before = map_count()
    keep = [model(i) for i in range(6)]       # six models the session still holds
    ms = [float(mj.fit(f, {"m": 0.0}, x).params["m"]) for f in keep]
    mj.fit_batch(keep[0], {"m": 0.0}, x.reshape(3, 20))
    gc.collect(); grown = map_count()
    mj.clear_caches(); after = map_count()
    again = float(mj.fit(keep[1], {"m": 0.0}, x).params["m"])  # compiles again, same answer
    print(json.dumps({"before": before, "grown": grown, "after": after, "ms": ms, "again": again,
                      "mean": float(x.mean())}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="memory maps are counted on Linux only")
def test_clear_caches_releases_compiled_programs():
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["grown"] - r["before"] > 6 * 10  # each compiled program holds memory maps
    assert r["after"] - r["before"] < 0.2 * (r["grown"] - r["before"])  # released
    for m in [*r["ms"], r["again"]]:  # closed form: the sample mean
        assert abs(m - r["mean"]) < 1e-8
