"""Initial responsibilities for EM: k-means++ seeding, Lloyd iterations, random."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _sqdist(x, c):
    """Squared distances (n, k) between rows of x and centres c, by one matmul."""
    return jnp.maximum(
        jnp.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, 1)[None, :], 0.0
    )


def kmeans_pp(key, x, w, k):
    """k-means++ seeding (Arthur & Vassilvitskii): each new centre is a data point
    drawn with probability proportional to ``w * D(x)^2``."""
    n, d = x.shape
    logw = jnp.log(w)
    key, sub = jax.random.split(key)
    first = jax.random.categorical(sub, logw)
    centres = jnp.zeros((k, d), x.dtype).at[0].set(x[first])
    d2 = jnp.sum((x - x[first]) ** 2, 1)

    def body(i, carry):
        centres, d2, key = carry
        key, sub = jax.random.split(key)
        p = w * d2
        logits = jnp.where(jnp.any(p > 0), jnp.log(p), logw)  # fewer distinct points than k
        c = x[jax.random.categorical(sub, logits)]
        return centres.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c) ** 2, 1)), key

    centres, _, _ = lax.fori_loop(1, k, body, (centres, d2, key))
    return centres


def kmeans_resp(key, x, w, k, lloyd=True, n_lloyd=25):
    """Hard responsibilities (n, k) from k-means++ centres, refined by ``n_lloyd``
    weighted Lloyd iterations when ``lloyd`` (an empty cluster keeps its centre)."""
    centres = kmeans_pp(key, x, w, k)
    if lloyd:

        def body(_, c):
            r = jax.nn.one_hot(jnp.argmin(_sqdist(x, c), 1), k, dtype=x.dtype) * w[:, None]
            nk = jnp.sum(r, 0)
            new = (r.T @ x) / jnp.where(nk > 0, nk, 1.0)[:, None]
            return jnp.where((nk > 0)[:, None], new, c)

        centres = lax.fori_loop(0, n_lloyd, body, centres)
    return jax.nn.one_hot(jnp.argmin(_sqdist(x, centres), 1), k, dtype=x.dtype)


def random_resp(key, n, k, dtype):
    """Uniform random responsibilities, normalised per row (scikit-learn's 'random')."""
    r = jax.random.uniform(key, (n, k), dtype)
    return r / jnp.sum(r, 1, keepdims=True)
