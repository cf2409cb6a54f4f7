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
    # Unit eigenvector (c, s) of the larger eigenvalue from the better-conditioned of the
    # two rows of A - w1 I (no trigonometry, which does not vectorise well on CPU).
    pos = half >= 0
    e0 = jnp.where(pos, half + r, a01)
    e1 = jnp.where(pos, a01, r - half)
    nrm = jnp.hypot(e0, e1)
    scalar = nrm == 0  # a multiple of the identity: any basis
    nrm = jnp.where(scalar, 1.0, nrm)
    c = jnp.where(scalar, 1.0, e0 / nrm)
    s = jnp.where(scalar, 0.0, e1 / nrm)
    v = jnp.stack([jnp.stack([-s, c]), jnp.stack([c, s])])  # columns: smaller, larger
    return w, v
