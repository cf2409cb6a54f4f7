"""Test session set-up: float64 for inference, once for the whole session; compiled
programs released before a worker nears Linux's cap on memory maps; module-level
random generators rewound before every test, so a test's data never depend on which
tests ran before it in the same worker (pytest-xdist distributes them differently
from run to run)."""

import jax
import numpy as np
import pytest

from mlejax._jit import MAX_MAP_COUNT, clear_caches, map_count

jax.config.update("jax_enable_x64", True)

# Each compiled program holds ~20-400 memory maps; a worker that runs hundreds of tests
# keeps thousands of programs and would die inside XLA at vm.max_map_count (65,530).
MAP_HEADROOM = 0.4


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    yield
    n = map_count()
    if n is not None and n > MAP_HEADROOM * MAX_MAP_COUNT:
        clear_caches()


_RNG_STATES: dict = {}


@pytest.fixture(autouse=True)
def _rewind_module_generators(request):
    """Every ``np.random.Generator`` at module level of the test's module starts each
    test from the state it had after the module was imported."""
    module = getattr(request.node, "module", None)
    for name, value in vars(module).items() if module is not None else ():
        if isinstance(value, np.random.Generator):
            key = (module.__name__, name)
            if key not in _RNG_STATES:
                _RNG_STATES[key] = value.bit_generator.state
            value.bit_generator.state = _RNG_STATES[key]
    yield
