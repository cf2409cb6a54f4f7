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
import numpy as np

__all__ = ["clear_caches", "map_count", "register_cache", "cached", "weak_cached", "model_jit", "jit",
           "compiler_options", "FAST_COMPILE_OPTIONS", "RUNTIME_FIRST_SIZE", "MAX_MAP_COUNT"]

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


# -- how mlejax's programs are compiled ---------------------------------------------------

# XLA's CPU backend now emits fused loops through its MLIR "fusion emitters" by default.
# For the programs a fit is made of (small k-vectors, while loops, derivative kernels)
# its older emitters compile the same program 1.3-2x faster and run it as fast or faster:
# quickstart 6.0-6.9 s -> 5.4-5.5 s, first HMM fit 1.6-2.1 s -> 1.0-1.5 s, first
# fit_batch 3.1-3.6 s -> 2.1-2.3 s, warm Weibull 50 -> 39-45 ms (benchmarks/README.md,
# "Compile options"). The option only concerns CPU compiles (GPU programs ignore it).
FAST_COMPILE_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
# The exception: EM over large data runs 1.3-1.5x faster with the new emitters (a
# Gaussian mixture, 50,000 x 4 points, 30 iterations: 82-95 ms against 122-144 ms), so a
# program whose data has at least this many elements is compiled with XLA's defaults
# (:meth:`jit.select`).
RUNTIME_FIRST_SIZE = 2**16

_DECIDED: list = []


def compiler_options() -> dict | None:
    """The XLA options mlejax compiles its own programs with: :data:`FAST_COMPILE_OPTIONS`,
    or None (XLA's defaults) when this jax cannot take them, when ``XLA_FLAGS`` already
    sets one of them (the user's choice wins), or with ``MLEJAX_FAST_COMPILE=0``.

    Decided once, at the first compile (never on import: it compiles a one-op probe).
    """
    if not _DECIDED:
        _DECIDED.append(_decide_options())
    return _DECIDED[0]


def _decide_options() -> dict | None:
    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("MLEJAX_FAST_COMPILE", "1") == "0" or any(name in flags for name in FAST_COMPILE_OPTIONS):
        return None
    try:  # a jax or XLA without the option refuses it (TypeError, or by name): keep the defaults then
        jax.jit(lambda a: a + 1, compiler_options=dict(FAST_COMPILE_OPTIONS)).lower(np.float32(0)).compile()
    except Exception:  # noqa: BLE001 - any refusal means "not this XLA"
        return None
    return dict(FAST_COMPILE_OPTIONS)


class jit:
    """``jax.jit(fun, **kwargs)`` compiled with :func:`compiler_options`, built at its
    first use (so importing mlejax compiles nothing and reads no flag).

    Called inside another trace (the user's ``jax.jit`` or ``vmap`` around a fit) it is
    the plain ``jax.jit``: XLA takes compile options for a whole program only, and the
    enclosing program's are the user's. Attributes of the jitted function (``lower``,
    ``trace``) are the quick-compile one's. :meth:`select` gives the function compiled
    with XLA's default options for large data (:data:`RUNTIME_FIRST_SIZE`).
    """

    def __init__(self, fun, **kwargs):
        self._fun, self._kwargs = fun, kwargs
        self._fast = self._default = None
        functools.update_wrapper(self, fun)

    def _jitted(self, quick: bool = True):
        options = compiler_options() if quick and _top_level() else None  # probed at top level only
        if options is not None:
            if self._fast is None:
                self._fast = jax.jit(self._fun, **self._kwargs, compiler_options=options)
            return self._fast
        if self._default is None:
            self._default = jax.jit(self._fun, **self._kwargs)
        return self._default

    def select(self, size: int):
        """The jitted function for data of ``size`` elements: compiled for a quick
        compile below :data:`RUNTIME_FIRST_SIZE`, with XLA's defaults (quicker to run)
        from it."""
        return self._jitted(size < RUNTIME_FIRST_SIZE)

    def _cache_size(self) -> int:
        return sum(j._cache_size() for j in (self._fast, self._default) if j is not None)

    def __call__(self, *args, **kwargs):
        return self._jitted()(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._jitted(), name)


try:  # True when no trace is active (not inside jit, vmap or grad)
    from jax._src.core import trace_state_clean as _top_level
except ImportError:  # pragma: no cover - a jax without it: never compile options

    def _top_level() -> bool:
        return False


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
        self._shared = jit(fun, static_argnames=(model, *self._static))
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
            jitted = jit(_lend_model(self._fun, self._name, slot), static_argnames=self._static)
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
