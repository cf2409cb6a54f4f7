"""Compiled programs: the caches that keep them, and releasing them (``mj.clear_caches``).

Every compiled program XLA's CPU backend keeps alive holds its machine code in
memory maps of its own (about 20 for a small fit, hundreds for a batched one), and
Linux caps a process at ``vm.max_map_count`` maps (65,530 by default): past it the
next compilation fails inside XLA and the process dies (an abort or a segfault, no
Python error). JAX keeps a compiled program as long as its cache entry lives, and a
model passed to a compiled function as a static argument lives in that cache, so a
long session that fits thousands of distinct models (or a test suite) can reach the
cap. :func:`clear_caches` releases them all; :func:`map_count` tells how close a
process is.
"""

from __future__ import annotations

import functools
import gc
import os

import jax

__all__ = ["clear_caches", "map_count", "register_cache", "cached", "MAX_MAP_COUNT"]

_CLEARERS: list = []


def _read_max_map_count() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530


MAX_MAP_COUNT = _read_max_map_count()


def register_cache(clear):
    """Have :func:`clear_caches` call ``clear()`` (a cache of compiled programs or of
    objects that own them); returns ``clear``."""
    _CLEARERS.append(clear)
    return clear


def cached(fn):
    """``functools.lru_cache(maxsize=None)`` whose entries :func:`clear_caches` drops."""
    out = functools.lru_cache(maxsize=None)(fn)
    register_cache(out.cache_clear)
    return out


def map_count() -> int | None:
    """The number of memory maps this process holds (Linux), None elsewhere."""
    try:
        with open(f"/proc/{os.getpid()}/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def clear_caches() -> None:
    """Release every compiled program mlejax and JAX keep for later calls.

    Fits after this call compile again (once per model and shapes, as the first
    time). Call it in a long session that fits thousands of distinct models (a
    notebook where the log-likelihood is edited and refitted all day, a loop over
    model variants): each compiled program holds memory maps, and a Linux process
    that reaches ``vm.max_map_count`` (65,530 by default) dies inside the compiler.
    ``mlejax._jit.map_count()`` says how many a process holds.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
        >>> x = np.random.default_rng(0).normal(size=50)
        >>> res = mj.fit(lambda p, x: jnp.sum(jax.scipy.stats.norm.logpdf(x, p["m"], 1.0)), {"m": 0.0}, x)
        >>> mj.clear_caches()
    """
    for clear in _CLEARERS:
        clear()
    jax.clear_caches()
    gc.collect()
