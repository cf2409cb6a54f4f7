"""Runs tests/test_plot.py in a fresh process (see the note at its top): every plot
test still runs and must pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")


def test_plot_module_in_a_fresh_process():
    here = Path(__file__).resolve().parent
    env = {**os.environ, "MLEJAX_PLOT_PROCESS": "1", "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "test_plot.py")],
                       capture_output=True, text=True, env=env, cwd=here.parent, timeout=1500)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout and "skipped" not in p.stdout.splitlines()[-1], p.stdout[-1000:]
