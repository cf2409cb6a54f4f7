"""The Examples sections of the public entry points run as doctests (x64 is on for
the session, tests/conftest.py), and every public entry point has one."""

import doctest
import importlib
import pkgutil

import pytest

import mlejax
import mlejax as mj

# modules whose import needs an optional extra are skipped when it is missing
MODULES = sorted(m.name for m in pkgutil.walk_packages(mlejax.__path__, "mlejax.") if m.name != "mlejax.__main__")

ENTRY_POINTS = [
    mj.fit_batch, mj.fit_dist, mj.em, mj.em_batch, mj.glm, mj.curve_fit, mj.bootstrap, mj.lrt,
    mj.select_components, mj.Mixture, mj.GaussianMixture, mj.dist.Family, mj.dist.Custom,
]


def _examples(name):
    try:
        mod = importlib.import_module(name)
    except ImportError as e:  # an optional extra (matplotlib, formulaic, ...) is not installed
        pytest.skip(f"{name}: {e}")
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(mod, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_doctests_of_module(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} doctest failures in {name} (printed above)"


@pytest.mark.parametrize("obj", ENTRY_POINTS, ids=lambda o: o.__name__)
def test_public_entry_points_have_runnable_examples(obj):
    doc = obj.__doc__ or ""
    assert "Examples:" in doc and ">>> " in doc, f"{obj.__name__} needs an Examples section with >>> lines"
