"""Small dense linear algebra that stays fast under ``vmap``.

``jnp.linalg.eigh`` on a batch of small matrices calls LAPACK once per matrix on
CPU: for a batch of thousands of 2x2 Hessians that loop costs more than the
log-likelihood itself. :func:`eigh` solves 1x1 and 2x2 symmetric matrices in
closed form (plain array operations, which ``vmap`` vectorises on any backend)
and hands larger ones to ``jnp.linalg.eigh``. The 2x2 formula is one Jacobi
rotation, accurate to rounding like LAPACK (absolute error ~ eps * |A|).
"""

from __future__ import annotations

import jax.numpy as jnp


def eigh(a):
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix,
    like ``jnp.linalg.eigh`` (eigenvector signs may differ)."""
    if a.ndim != 2 or a.shape[-1] > 2 or a.shape[-1] == 0:
        return jnp.linalg.eigh(a)
    if a.shape[-1] == 1:
        return a[0], jnp.ones_like(a)
    a00, a11 = a[0, 0], a[1, 1]
    a01 = 0.5 * (a[0, 1] + a[1, 0])
    mid, half = 0.5 * (a00 + a11), 0.5 * (a00 - a11)
    r = jnp.hypot(half, a01)
    w = jnp.stack([mid - r, mid + r])
    phi = 0.5 * jnp.arctan2(a01, half)  # angle of the eigenvector of the larger eigenvalue
    c, s = jnp.cos(phi), jnp.sin(phi)
    v = jnp.stack([jnp.stack([-s, c]), jnp.stack([c, s])])  # columns: smaller, larger
    return w, v
