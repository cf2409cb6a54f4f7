"""Sharded data (issue 14 part 1): on 8 forced CPU devices, in one subprocess (the
device count is fixed when JAX starts), a custom likelihood, a GLM, a Gaussian mixture
and a fit_batch on sharded data equal the same fits on host data, and the data stay
sharded (no data array copied whole to the host). The checks are in sharded_checks.py."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def sharded():
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, str(HERE / "sharded_checks.py")], capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("check", ["custom", "glm", "mixture", "fit_batch"])
def test_sharded_equals_unsharded(sharded, check):
    r = sharded[check]
    assert r["params"] < 1e-10 and r["stderr"] < 1e-10 and r["loglik"] < 1e-10, r
    assert r["finite"]
    # the inputs were sharded over the 8 devices, each holding 1/8 of every leaf
    assert r["n_devices"] == [8] * len(r["n_devices"]) and all("obs" in s for s in r["shardings"])
    assert r["bytes_per_device"] == [[b // 8] for b in r["bytes_total"]]
    # and no data leaf was copied whole to the host (results, a few k-vectors, may be)
    assert not [s for s in r["gathered"] if s in r["data_shapes"]], r["gathered"]


def test_fit_batch_result_stays_sharded(sharded):
    assert "P('obs',)" in sharded["fit_batch"]["result_sharding"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_jax_distributed():
    """The multi-host recipe (examples/multihost_fit.py): 2 processes x 4 CPU devices, gloo
    collectives, each process holding half the rows, give the single-process fit."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    cmd = [sys.executable, str(HERE.parent / "examples" / "multihost_fit.py")]
    port = str(_free_port())
    procs = [subprocess.Popen(cmd + [str(i), "2", port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    lines = [next(ln for ln in o.splitlines() if ln.startswith("process")) for o, _ in outs]
    assert "4 local / 8 global" in lines[0]
    got = [[float(v) for v in re.findall(r"-?\d+\.\d+", ln.split(";")[1])] for ln in lines]
    assert got[0] == got[1]
    x = np.random.default_rng(0).normal(1.0, 2.0, 800)  # the script's data, on one process
    res = mj.fit(lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"])),
                 {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
    want = [res.params["mu"], res.params["sigma"], res.stderr["mu"], res.stderr["sigma"], res.loglik]
    np.testing.assert_allclose(got[0], np.asarray(want, float), rtol=0, atol=1e-9)
