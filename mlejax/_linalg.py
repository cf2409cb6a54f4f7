"""Small dense linear algebra that stays fast under ``vmap``.

Every function takes the array namespace ``xp`` (``numpy`` on the host,
``jax.numpy`` inside a compiled fit), so the host-driven and compiled fits run
the same formulas.

``jnp.linalg.eigh`` on a batch of small matrices calls LAPACK once per matrix on
CPU: for a batch of thousands of 2x2 Hessians that loop costs more than the
log-likelihood itself. :func:`eigh` solves 1x1 and 2x2 symmetric matrices in
closed form (plain array operations, which ``vmap`` vectorises on any backend)
and hands larger ones to ``jnp.linalg.eigh``. The 2x2 formula is one Jacobi
rotation, accurate to rounding like LAPACK (absolute error ~ eps * |A|).
"""

from __future__ import annotations

import jax.numpy as jnp


def eigh(a, xp=jnp):
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix,
    like ``xp.linalg.eigh`` (eigenvector signs may differ)."""
    if a.ndim != 2 or a.shape[-1] > 2 or a.shape[-1] == 0:
        return xp.linalg.eigh(a)
    if a.shape[-1] == 1:
        return a[0], xp.ones_like(a)
    a00, a11 = a[0, 0], a[1, 1]
    a01 = 0.5 * (a[0, 1] + a[1, 0])
    mid, half = 0.5 * (a00 + a11), 0.5 * (a00 - a11)
    r = xp.hypot(half, a01)
    w = xp.stack([mid - r, mid + r])
    # Unit eigenvector (c, s) of the larger eigenvalue from the better-conditioned of the
    # two rows of A - w1 I (no trigonometry, which does not vectorise well on CPU).
    pos = half >= 0
    e0 = xp.where(pos, half + r, a01)
    e1 = xp.where(pos, a01, r - half)
    nrm = xp.hypot(e0, e1)
    scalar = nrm == 0  # a multiple of the identity: any basis
    nrm = xp.where(scalar, 1.0, nrm)
    c = xp.where(scalar, 1.0, e0 / nrm)
    s = xp.where(scalar, 0.0, e1 / nrm)
    v = xp.stack([xp.stack([-s, c]), xp.stack([c, s])])  # columns: smaller, larger
    return w, v
