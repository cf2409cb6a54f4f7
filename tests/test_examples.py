"""Every script in examples/ runs (at the small size CI uses) and exits 0.

``quickstart.py`` (the README's first command) runs as a fresh interpreter would run
it; the others run in this process with the same environment (``runpy``, as
``__main__``), which spares an interpreter start and a JAX import per script. An
unexpected warning fails them here as in any test."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# multihost_fit.py needs several cooperating processes: tests/test_shard.py runs it as two
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_") and p.name != "multihost_fit.py")
FRESH = {"quickstart.py"}
ENV = {"MLEJAX_EXAMPLES_SMALL": "1", "MPLBACKEND": "Agg"}


def test_every_example_is_listed():
    assert {"quickstart.py", "custom_likelihood.py", "batch_fitting.py", "mixtures.py", "intervals.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path, monkeypatch):
    env = {**ENV, "MLEJAX_EXAMPLES_OUT": str(tmp_path)}
    if script in FRESH:
        env = {**os.environ, **env, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        p = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                           timeout=900, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
        assert "Traceback" not in p.stderr
        return
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # `from _common import ...`
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script)])
    try:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
