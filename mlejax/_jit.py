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
import threading
import weakref

import jax

__all__ = ["clear_caches", "map_count", "register_cache", "cached", "weak_cached", "model_jit", "MAX_MAP_COUNT"]

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


def weak_cached(build):
    """``build(get)`` once per object ``obj``, for an ``obj`` held weakly: ``get()``
    returns ``obj`` (a weak reference), so what ``build`` makes (e.g. a log-likelihood
    wrapping a user's model function) does not keep ``obj`` alive, and the entry goes
    when ``obj`` does. Objects that cannot be weakly referenced are held strongly."""
    table: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    strong: dict = {}
    register_cache(table.clear)
    register_cache(strong.clear)

    @functools.wraps(build)
    def get(obj):
        try:
            hit = table.get(obj)
            if hit is None:
                hit = table[obj] = build(weakref.ref(obj))
            return hit
        except TypeError:  # no weak references to obj
            if obj not in strong:
                strong[obj] = build(lambda: obj)
            return strong[obj]

    return get


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


# -- one compiled function per model, released with the model ---------------------------


def _owners(model) -> tuple:
    """The user objects whose life bounds ``model``'s compiled programs: what its
    ``owners()`` names (mlejax's hashable wrappers of user functions), else ``model``."""
    owners = getattr(model, "owners", None)
    return tuple(owners()) if callable(owners) else (model,)


def _lend_model(fun, name, slot):
    """``fun`` with the model keyword filled from ``slot`` at call (trace) time; named
    as ``fun`` so compile logs and profiles show mlejax's own names."""

    def call(*args, **kwargs):
        return fun(*args, **{name: slot.model}, **kwargs)

    call.__name__, call.__qualname__ = fun.__name__, fun.__qualname__
    return call


class _Slot(threading.local):
    """The model lent to a trace, per thread (threads may trace the same model at once)."""

    model = None


class model_jit:
    """``jax.jit(fun, static_argnames=(model, *static_argnames))`` whose compiled
    programs die with the model.

    A model passed as a static argument of one module-level ``jax.jit`` lives in that
    function's cache, with every program compiled for it, until the process ends.
    Here each model (keyed by the user objects it wraps, :func:`_owners`) gets its own
    jitted function, held in a table that drops it when any of those objects is
    garbage-collected; the model itself is lent to the traced function only during a
    call, so the table holds no strong reference to it. Models that cannot be weakly
    referenced share one plain ``jax.jit`` as before. The model and the other static
    arguments are passed by keyword.
    """

    def __init__(self, fun, model: str, static_argnames=()):
        self._fun, self._name, self._static = fun, model, tuple(static_argnames)
        self._shared = jax.jit(fun, static_argnames=(model, *self._static))
        self._per: dict = {}
        register_cache(self._per.clear)
        functools.update_wrapper(self, fun)

    def _entry(self, model):
        owners = _owners(model)
        key = (type(model), tuple(id(o) for o in owners), hash(model))
        entry = self._per.get(key)
        if entry is None:
            try:
                refs = [weakref.ref(o, lambda _, k=key: self._per.pop(k, None)) for o in owners]
            except TypeError:  # not weakly referenceable: the shared cache
                return None
            slot = _Slot()
            jitted = jax.jit(_lend_model(self._fun, self._name, slot), static_argnames=self._static)
            entry = self._per[key] = (slot, jitted, refs)
        return entry

    def _cache_size(self) -> int:
        """Compiled programs held, over all models (as ``jax.jit``'s own)."""
        return self._shared._cache_size() + sum(jitted._cache_size() for _, jitted, _ in self._per.values())

    def __call__(self, *args, **kwargs):
        model = kwargs.pop(self._name)
        entry = self._entry(model)
        if entry is None:
            return self._shared(*args, **{self._name: model}, **kwargs)
        slot, jitted, _ = entry
        previous, slot.model = slot.model, model  # lent for tracing, never kept
        try:
            return jitted(*args, **kwargs)
        finally:
            slot.model = previous
