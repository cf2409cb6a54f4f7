"""Sharded data on 8 forced CPU devices (issue 14 part 1): the compiled fit's input
shardings, the memory each device holds and works in, and the time of a sharded fit
against the same fit on one device, interleaved, best of --repeat.

    python benchmarks/bench_shard.py [--n 400000] [--p 8] [--repeat 5]

The 8 "devices" are XLA host-platform devices sharing this machine's cores, so the
time ratio says what sharding costs in overhead here, not what 8 real devices gain.
"""

import argparse
import os
import time

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

jax.config.update("jax_enable_x64", True)
import mlejax as mj  # noqa: E402
from mlejax._constraints import parametrize  # noqa: E402
from mlejax._fit import _core_jit, check_options, core_static  # noqa: E402
from mlejax._observations import observations  # noqa: E402


def loglik(p, d):
    eta = d["X"] @ p["beta"]
    return jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))


def compiled_fit(init, data):
    """The program mj.fit runs for these inputs (the compiled path), compiled."""
    ll, solver, maxiter, tol = check_options(loglik, None, "newton", None, None, "observed")
    spec, dyn = parametrize(init)
    n, obs = observations(data)
    static = core_static(ll, spec, solver, "observed", n, None, True, obs)
    return _core_jit.lower(dyn, data, jnp.asarray(tol), jnp.asarray(maxiter, jnp.int32), None,
                           **static).compile()


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn().params)
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400_000)
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(a.n), rng.normal(size=(a.n, a.p - 1))])
    y = (rng.random(a.n) < 1 / (1 + np.exp(-X @ np.linspace(-0.5, 0.5, a.p)))).astype(float)
    mesh = Mesh(np.array(jax.devices()), ("obs",))
    rows = NamedSharding(mesh, PartitionSpec("obs"))
    one = jax.devices()[0]
    host = {"X": jax.device_put(X, one), "y": jax.device_put(y, one)}
    shard = {"X": jax.device_put(X, rows), "y": jax.device_put(y, rows)}
    init = {"beta": np.zeros(a.p)}

    print(f"logistic regression N={a.n} P={a.p}, {len(jax.devices())} CPU devices, float64")
    for name, data in (("one device", host), ("sharded", shard)):
        c = compiled_fit(init, data)
        mem = c.memory_analysis()
        print(f"[{name}] compiled input shardings (data): {c.input_shardings[0][1]}")
        print(f"[{name}] per device: arguments {mem.argument_size_in_bytes / 2**20:.2f} MiB, "
              f"temporaries {mem.temp_size_in_bytes / 2**20:.2f} MiB, outputs {mem.output_size_in_bytes} B")
        print(f"[{name}] bytes of X held by each device: "
              f"{sorted({s.data.nbytes for s in data['X'].addressable_shards})} of {data['X'].nbytes}")
    fit = lambda d: lambda: mj.fit(loglik, init, d)  # noqa: E731
    r1, r8 = fit(host)(), fit(shard)()
    diff = float(np.max(np.abs(np.asarray(r1.params["beta"]) - np.asarray(r8.params["beta"]))))
    dse = float(np.max(np.abs(np.asarray(r1.stderr["beta"]) - np.asarray(r8.stderr["beta"]))))
    print(f"max |params diff| {diff:.2e}, max |stderr diff| {dse:.2e}, loglik diff {float(r1.loglik) - float(r8.loglik):.2e}")
    t1 = t8 = np.inf
    for _ in range(2):  # interleaved
        t1 = min(t1, best(fit(host), a.repeat))
        t8 = min(t8, best(fit(shard), a.repeat))
    print(f"one device {t1 * 1e3:.1f} ms, sharded over 8 {t8 * 1e3:.1f} ms, ratio one/sharded {t1 / t8:.2f}")


if __name__ == "__main__":
    main()
