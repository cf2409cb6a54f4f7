"""Every script in examples/ runs (at the small size CI uses) and exits 0."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# multihost_fit.py needs several cooperating processes: tests/test_shard.py runs it as two
SCRIPTS = sorted(p.name for p in (ROOT / "examples").glob("*.py")
                 if not p.name.startswith("_") and p.name != "multihost_fit.py")


def test_every_example_is_listed():
    assert {"quickstart.py", "custom_likelihood.py", "batch_fitting.py", "mixtures.py", "intervals.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "MLEJAX_EXAMPLES_SMALL": "1", "MLEJAX_EXAMPLES_OUT": str(tmp_path), "MPLBACKEND": "Agg",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                       timeout=900, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    assert "Traceback" not in p.stderr
