"""The small-matrix eigen-decomposition used by Newton and the information analysis
(vectorises under vmap) agrees with LAPACK."""

import jax
import jax.numpy as jnp
import numpy as np

from mlejax._linalg import eigh


def _cases(k, rng):
    out = []
    for kind in range(5):
        q, _ = np.linalg.qr(rng.normal(size=(k, k)))
        w = [
            rng.normal(size=k),
            10.0 ** rng.uniform(-12, 6, k) * rng.choice([-1, 1], k),  # wide range, both signs
            np.ones(k),  # repeated
            np.r_[0.0, rng.normal(size=k - 1)],  # singular
            np.r_[1e-300, 1e300, 1.0][:k],  # extreme scales
        ][kind]
        a = (q * w) @ q.T
        out.append(0.5 * (a + a.T))
    out.append(np.diag(np.arange(k, 0, -1.0)))  # diagonal, descending
    return out


def test_eigh_matches_lapack_and_reconstructs():
    rng = np.random.default_rng(0)
    f = jax.jit(eigh)
    for k in (1, 2, 3):
        for a in _cases(k, rng) * 20:
            w, v = (np.asarray(t) for t in f(jnp.asarray(a)))
            ref = np.linalg.eigvalsh(a)
            scale = np.max(np.abs(ref))
            np.testing.assert_allclose(w, ref, rtol=0, atol=8e-16 * scale * k)
            assert np.all(np.diff(w) >= 0)
            np.testing.assert_allclose(v.T @ v, np.eye(k), atol=1e-15 * k)
            np.testing.assert_allclose((v * w) @ v.T, a, rtol=0, atol=4e-16 * scale * k)


def test_eigh_under_vmap_and_nonfinite_input():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 2, 2))
    a = a + a.transpose(0, 2, 1)
    w, v = jax.vmap(eigh)(jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(w), np.linalg.eigvalsh(a), atol=1e-14)
    w, v = eigh(jnp.array([[jnp.nan, 1.0], [1.0, 2.0]]))
    assert not np.any(np.isfinite(np.asarray(w)))
