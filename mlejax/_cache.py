"""Opt-in persistent compilation cache: compiled fits survive the process."""

from __future__ import annotations

import os
import tempfile

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

__all__ = ["enable_compilation_cache", "default_cache_dir"]


def default_cache_dir() -> str:
    """The per-user cache directory: ``$XDG_CACHE_HOME/mlejax/jax``, or
    ``~/.cache/mlejax/jax`` when ``XDG_CACHE_HOME`` is not set."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlejax", "jax")


def _writable_dir(path) -> str:
    """``path`` as an absolute directory that exists and can be written, or ValueError."""
    try:
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    except TypeError as e:
        raise TypeError(f"enable_compilation_cache: path must be a str or os.PathLike, got {type(path).__name__}.") from e
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(
            f"enable_compilation_cache: path={path!r} cannot be used as a cache directory ({e.strerror or e}); "
            "pass a directory you can write to, e.g. enable_compilation_cache('/tmp/mlejax-cache')."
        ) from e
    return path


def enable_compilation_cache(path=None) -> str:
    """Turn on JAX's persistent compilation cache, so later processes skip compiling.

    A first fit of a model compiles it (seconds on a CPU); with the cache on, the
    compiled programs are written to ``path`` and a later process that fits the same
    model with the same shapes loads them instead of compiling again. mlejax never
    calls this itself (nor changes ``jax.config`` on import): call it once, at the
    top of a script, before the first fit. It sets ``jax_compilation_cache_dir`` and
    caches every program however small (``jax_persistent_cache_min_compile_time_secs``
    and ``jax_persistent_cache_min_entry_size_bytes`` set to 0; JAX's default of 1 s
    would leave mlejax's small programs uncached). It affects every ``jax.jit`` in
    the process, not only mlejax's. Calling it again with the same path does nothing;
    with another path it switches to that directory.

    The cache is trusted code: use a directory only you can write to.

    Args:
        path: the cache directory (created if missing). Default ``None``: a per-user
            directory, ``$XDG_CACHE_HOME/mlejax/jax`` or ``~/.cache/mlejax/jax``.

    Returns:
        The absolute path of the cache directory in use.

    Raises:
        ValueError: ``path`` cannot be created or written to (the message says why).
        TypeError: ``path`` is not a string or path-like object.

    Examples:
        At the top of a script (not run as a doctest: it changes JAX's settings for
        the whole process; ``tests/test_cache.py`` checks it):

        >>> import mlejax as mj
        >>> mj.enable_compilation_cache()  # doctest: +SKIP
        '/home/me/.cache/mlejax/jax'
        >>> mj.enable_compilation_cache("/scratch/me/jax-cache")  # doctest: +SKIP
        '/scratch/me/jax-cache'
    """
    path = _writable_dir(default_cache_dir() if path is None else path)
    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if previous != path:
        jax.config.update("jax_compilation_cache_dir", path)
        if previous is not None:
            _jax_cache.reset_cache()  # JAX opens its cache once; reopen it at the new path
    return path
