"""Sharded data (issue 14 part 1): on 8 forced CPU devices, in one subprocess (the
device count is fixed when JAX starts), a custom likelihood, a GLM, a Gaussian mixture
and a fit_batch on sharded data equal the same fits on host data, and the data stay
sharded (no data array copied whole to the host). The checks are in sharded_checks.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
