"""Initial responsibilities for EM: k-means++ seeding, Lloyd iterations, random.

Written once for mixtures and hidden Markov models (:func:`initial_resp`). They are
traced into the model's EM program. Tried and measured against this (first
``mj.em`` of a Gaussian mixture, ``benchmarks/bench_first_call.py --cases em``): a
separate program per data shape (shared by models) costs more on a first fit than it
saves on a second; inverse-CDF k-means++ draws from one uniform per centre compile
no quicker than ``jax.random.categorical``; running it on the host (numpy) saves
~0.3 s but its rounding differs from the compiled one's by an ulp, which breaks
ties on integer data differently from ``em_batch`` and ``vmap``.
"""

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


def standardised_features(x, w):
    """The rows of ``x`` flattened (in the weights' dtype), centred at their weighted
    mean and divided by each column's weighted standard deviation (a column without
    spread is left unscaled), (n, p): what k-means clusters for a family of any scale."""
    f = x.reshape(x.shape[0], -1).astype(w.dtype)
    total = jnp.sum(w)
    fc = f - (w @ f) / total
    sd = jnp.sqrt((w @ fc**2) / total)
    return fc / jnp.where(sd > 0, sd, 1.0)


def initial_resp(key, feats, w, k, n_init, init_method):
    """The starting responsibilities of ``n_init`` restarts, (n_init, n, k), from the
    model's k-means features ``feats`` (n, p): restart ``i`` draws with
    ``jax.random.split(key, n_init)[i]``. ``init_method`` is ``"kmeans"`` (k-means++
    and Lloyd), ``"kmeans++"`` or ``"random"``; ``w`` weights the observations (0:
    padding or missing, never a centre)."""
    keys = jax.random.split(key, n_init)
    if init_method == "random":
        one = lambda kk: random_resp(kk, feats.shape[0], k, w.dtype)  # noqa: E731
    else:
        one = lambda kk: kmeans_resp(kk, feats, w, k, lloyd=init_method == "kmeans")  # noqa: E731
    if n_init == 1:  # no batch axis of one
        return one(keys[0])[None]
    return jax.vmap(one)(keys)
