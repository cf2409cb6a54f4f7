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
        if xp is not jnp and not xp.all(xp.isfinite(a)):  # LAPACK raises on NaN: NaN out, as jnp does
            nan = xp.full(a.shape, xp.nan, a.dtype)
            return nan[..., 0], nan
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


SMALL_SOLVE = 4  # up to this order, solve() is straight-line code


def solve(a, b):
    """``jnp.linalg.solve(a, b)`` for one matrix and one right-hand side; up to order
    ``SMALL_SOLVE`` by Gaussian elimination with partial pivoting written out as plain
    array operations (selects, no LAPACK call, no loop), which compile to a few fused
    kernels under ``vmap`` (a batched LU, or its pure-JAX substitute where batched
    LAPACK can deadlock, compiles to many). A singular ``a`` gives inf/NaN, as LU does."""
    n = a.shape[-1]
    if n > SMALL_SOLVE:
        return jnp.linalg.solve(a, b)
    rows = [[a[i, j] for j in range(n)] + [b[i]] for i in range(n)]
    for j in range(n):
        for i in range(j + 1, n):  # bring the largest |entry| of column j up (first one on ties)
            swap = jnp.abs(rows[i][j]) > jnp.abs(rows[j][j])
            rows[j], rows[i] = ([jnp.where(swap, q, p) for p, q in zip(rows[j], rows[i])],
                                [jnp.where(swap, p, q) for p, q in zip(rows[j], rows[i])])
        for i in range(j + 1, n):
            m = rows[i][j] / rows[j][j]
            rows[i] = rows[i][: j + 1] + [rows[i][k] - m * rows[j][k] for k in range(j + 1, n + 1)]
    x = [None] * n
    for i in reversed(range(n)):
        r = rows[i][n]
        for k in range(i + 1, n):
            r = r - rows[i][k] * x[k]
        x[i] = r / rows[i][i]
    return jnp.stack(x)
