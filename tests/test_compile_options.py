"""mlejax compiles its programs with quick-compile XLA options (``mlejax._jit``), decided
once at the first compile, never on import, yielding to the user's ``XLA_FLAGS`` and to
``MLEJAX_FAST_COMPILE=0``; the options change how XLA emits a program, never its answer.

Oracles: the same program compiled with XLA's defaults (``jax.jit`` alone), and the
closed-form Weibull derivatives."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mlejax as mj
from mlejax import _jit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _weibull_ll(p, t):
    k, lam = jnp.exp(p[0]), jnp.exp(p[1])
    z = t / lam
    return jnp.sum(jnp.log(k) - jnp.log(lam) + (k - 1.0) * jnp.log(z) - z**k)


def _kernel(p, t):
    return _weibull_ll(p, t), jax.grad(_weibull_ll)(p, t), jax.hessian(_weibull_ll)(p, t)


def test_options_compile_the_same_answer_as_xla_defaults():
    t = np.random.default_rng(0).weibull(1.7, 5_000) * 2.5
    p = np.array([0.4, 0.8])
    quick = _jit.jit(_kernel)
    assert quick.select(t.size) is quick.select(0)  # below RUNTIME_FIRST_SIZE: the quick-compile program
    fast = quick(p, t)
    default = jax.jit(_kernel)(p, t)
    for a, b in zip(fast, default):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=0)
    # closed form of the gradient in log k, log lambda
    k, lam = np.exp(p)
    z = t / lam
    g_logk = len(t) + k * np.sum(np.log(z)) - k * np.sum(z**k * np.log(z))
    g_loglam = -k * len(t) + k * np.sum(z**k)
    np.testing.assert_allclose(np.asarray(fast[1]), [g_logk, g_loglam], rtol=1e-10)


def test_large_data_selects_xla_defaults():
    quick = _jit.jit(_kernel)
    small, large = quick.select(_jit.RUNTIME_FIRST_SIZE - 1), quick.select(_jit.RUNTIME_FIRST_SIZE)
    if _jit.compiler_options() is None:
        pytest.skip("this jax cannot take the options")  # pragma: no cover - old jaxlib
    assert small is not large
    t = np.linspace(0.1, 3.0, 50)
    np.testing.assert_allclose(np.asarray(small(np.zeros(2), t)[2]), np.asarray(large(np.zeros(2), t)[2]),
                               rtol=1e-13)


@pytest.mark.parametrize("env, expected", [
    ({}, _jit.FAST_COMPILE_OPTIONS),
    ({"MLEJAX_FAST_COMPILE": "0"}, None),
    ({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}, None),
])
def test_decision_yields_to_the_user(monkeypatch, env, expected):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("MLEJAX_FAST_COMPILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _jit._decide_options() == expected


def test_an_option_this_xla_lacks_is_dropped(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(_jit, "FAST_COMPILE_OPTIONS", {"xla_no_such_option_anywhere": True})
    assert _jit._decide_options() is None


def test_nothing_is_decided_or_compiled_on_import():
    child = textwrap.dedent(
        """
        import jax
        import mlejax, mlejax._jit as j
        from jax._src import xla_bridge
        assert not j._DECIDED, "decided on import"
        assert not xla_bridge._backends, "a backend was started on import"
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def test_em_on_large_data_equals_the_quick_compile_program():
    """Three copies of the data give the same EM iterates (and 3x the log-likelihood);
    the copies cross RUNTIME_FIRST_SIZE, so they run XLA's default program."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0.0, 1.0, (4_000, 4)), rng.normal(3.0, 1.0, (4_000, 4))])
    tripled = np.concatenate([x] * 3)
    assert x.size < _jit.RUNTIME_FIRST_SIZE <= tripled.size
    init = {"weights": np.array([0.3, 0.7]), "means": np.array([[0.5] * 4, [2.0] * 4]),
            "covariances": np.stack([np.eye(4)] * 2)}
    one = mj.em(mj.GaussianMixture(2), x, tol=0, maxiter=5, init=init, stderr=False)
    three = mj.em(mj.GaussianMixture(2), tripled, tol=0, maxiter=5, init=init, stderr=False)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(np.asarray(three.params[name]), np.asarray(one.params[name]), rtol=1e-10)
    np.testing.assert_allclose(float(three.loglik), 3 * float(one.loglik), rtol=1e-12)
