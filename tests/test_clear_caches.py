"""Compiled programs are released with their models, or by mj.clear_caches (Linux memory maps, the resource
whose cap kills a process inside XLA), and fits compile again afterwards.

The oracle is the kernel's own count of this process's memory maps
(``/proc/self/maps``), before and after, in a fresh subprocess so that other tests'
programs do not blur the count."""

import concurrent.futures
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent(
    """
    import gc, json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import mlejax as mj
    from mlejax._jit import map_count
    x = np.random.default_rng(0).normal(1.0, 2.0, 60)
    t = np.linspace(0.0, 1.0, 20)
    def model(i):
        return lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"] + 0.0 * i, 2.0))
    def curve(i):
        return lambda th, t: th[0] * jnp.exp(th[1] * t) + 0.0 * i
    def fits(pair):
        m = float(mj.fit(pair[0], {"m": 0.0}, x).params["m"])
        mj.curve_fit(pair[1], t, np.exp(0.5 * t), np.array([1.0, 0.1]))
        return m
    fits((model(-1), curve(-1)))          # imports and mlejax's shared programs
    mj.fit_batch(model(-1), {"m": 0.0}, x.reshape(3, 20))
    gc.collect(); before = map_count()
    held = [(model(i), curve(i)) for i in range(3)]
    ms = [fits(pair) for pair in held]     # three models the session holds, then drops
    grown = map_count(); del held; gc.collect(); dropped = map_count()
    keep = model(7)                           # a model the session still holds
    mj.fit_batch(keep, {"m": 0.0}, x.reshape(3, 20))
    grown2 = map_count(); mj.clear_caches(); after = map_count()
    again = float(mj.fit(keep, {"m": 0.0}, x).params["m"])  # compiles again, same answer
    print(json.dumps({"before": before, "grown": grown, "dropped": dropped, "grown2": grown2, "after": after,
                      "ms": ms, "again": again, "mean": float(x.mean())}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="memory maps are counted on Linux only")
def test_compiled_programs_go_with_the_model_or_on_clear_caches():
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["grown"] - r["before"] > 6 * 10  # six programs (a fit and a curve_fit each) hold memory maps
    assert r["dropped"] - r["before"] < 0.1 * (r["grown"] - r["before"])  # released with their models
    assert r["grown2"] - r["dropped"] > 20  # fit_batch's programs, kept for the next call
    assert r["after"] - r["before"] < 0.2 * (r["grown2"] - r["before"])  # released by clear_caches
    for m in [*r["ms"], r["again"]]:  # closed form: the sample mean
        assert abs(m - r["mean"]) < 1e-8


def test_threads_fitting_one_model_at_once_each_get_their_own_answer():
    """The model is lent to each trace per thread: four threads tracing the same
    log-likelihood for different data shapes at once each reach their sample mean."""
    def ll(p, x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"], 1.0))

    rng = np.random.default_rng(3)
    xs = [rng.normal(i, 1.0, 20 + 5 * (i % 4)) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ms = list(pool.map(lambda x: float(mj.fit(ll, {"m": 0.0}, x).params["m"]), xs))
    for m, x in zip(ms, xs):
        assert abs(m - x.mean()) < 1e-9
