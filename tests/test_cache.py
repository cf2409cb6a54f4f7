"""mj.enable_compilation_cache: JAX's persistent compilation cache, opt-in, small programs included.

The in-process tests compile nothing while the cache is on and restore JAX's
configuration afterwards; the cross-process behaviour (a second process loads what
the first compiled) runs in subprocesses, each counting JAX's own cache events.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cache

import mlejax as mj

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes")


@pytest.fixture
def restore_config():
    """Put JAX's cache settings back as they were, and let JAX reopen its cache lazily."""
    saved = {k: getattr(jax.config, k) for k in KEYS}
    yield
    for k, v in saved.items():
        jax.config.update(k, v)
    jax_cache.reset_cache()


def test_sets_jax_config_returns_path_and_is_idempotent(tmp_path, restore_config):
    target = tmp_path / "cache" / "nested"
    path = mj.enable_compilation_cache(target)
    assert path == str(target) and os.path.isdir(path)
    assert jax.config.jax_compilation_cache_dir == path
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0  # JAX's default 1 s skips small programs
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == 0
    assert mj.enable_compilation_cache(str(target)) == path
    assert jax.config.jax_compilation_cache_dir == path
    other = mj.enable_compilation_cache(tmp_path / "other")  # switching directories
    assert jax.config.jax_compilation_cache_dir == other == str(tmp_path / "other")


def test_default_is_a_per_user_directory(tmp_path, monkeypatch, restore_config):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mj.enable_compilation_cache() == str(tmp_path / "xdg" / "mlejax" / "jax")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mj.enable_compilation_cache() == str(tmp_path / "home" / ".cache" / "mlejax" / "jax")
    assert os.path.isdir(tmp_path / "home" / ".cache" / "mlejax" / "jax")


def test_unusable_path_is_a_clear_error(tmp_path, restore_config):
    before = jax.config.jax_compilation_cache_dir
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    for bad in (a_file, a_file / "sub"):
        with pytest.raises(ValueError, match=r"path=.*cannot be used as a cache directory.*writ"):
            mj.enable_compilation_cache(bad)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        mj.enable_compilation_cache(3)
    assert jax.config.jax_compilation_cache_dir == before  # nothing changed


CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp
    import mlejax as mj
    untouched = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    jax.jit(lambda x: x * 2.0)(jnp.ones(2))  # JAX already compiled something: enabling late still works
    mj.enable_compilation_cache(sys.argv[1])
    out = jax.jit(lambda x: jnp.sin(x) * 3.0 + 17.25)(jnp.ones(3))  # compiles in microseconds
    print(json.dumps({"untouched": untouched, "value": float(out[0]),
                      "hits": events.count("/jax/compilation_cache/cache_hits"),
                      "misses": events.count("/jax/compilation_cache/cache_misses")}))
    """
)


def _child(cache):
    env = dict(os.environ, PYTHONPATH=ROOT)
    for var in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        env.pop(var, None)
    out = subprocess.run([sys.executable, "-c", CHILD, str(cache)], capture_output=True, text=True, env=env,
                         timeout=240, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    first = _child(cache)
    assert first["untouched"] == [None, 1.0]  # importing mlejax leaves jax.config alone
    assert first["misses"] >= 1 and first["hits"] == 0
    assert any(files for _, _, files in os.walk(cache))  # a program compiled in microseconds was written
    second = _child(cache)
    assert second["hits"] >= 1 and second["misses"] == 0  # every program came from the cache
    assert second["value"] == first["value"]
