"""Test session set-up: float64 for inference, once for the whole session; compiled
programs released before a worker nears Linux's cap on memory maps."""

import jax
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
