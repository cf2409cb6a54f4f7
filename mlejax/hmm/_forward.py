"""Forward-backward and Viterbi for batches of padded sequences, in one compiled pass.

Sequences of different lengths are padded to a common length ``T`` and carry a mask
``(N, T)``; a padded step leaves the filter unchanged (identity transition, no
emission) and contributes nothing, so all sequences run in one ``lax.scan`` over time
with the sequences as a batch axis -- no Python loop over sequences.

The forward pass is Rabiner's scaled recursion on emission densities shifted by their
per-step maximum over states, ``b_t = exp(log p(x_t | k) - m_t)``: the filtered state
probabilities are normalised at every step and the log-likelihood is accumulated in
log space as ``sum_t (log c_t + m_t)``, so it neither underflows nor overflows on long
sequences, while each step is one small matrix product (no ``logsumexp`` over K x K
inside the loop). Viterbi runs in log space (max-product).

The parallel-in-time variant (:func:`forward_backward_parallel`) computes the same
quantities with ``lax.associative_scan`` over the normalised products of the per-step
matrices ``A diag(b_t)``: O(log T) depth for long sequences on accelerators.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import lax


class Posterior(NamedTuple):
    loglik: Any  # (N,) log-likelihood of each sequence
    gamma: Any  # (N, T, K) posterior state probabilities (0 at padded steps)
    start: Any  # (K,) sum over sequences of the posterior at t = 0
    trans: Any  # (K, K) expected transition counts, summed over sequences and time


def shifted_densities(logb):
    """``exp(logb - m)`` and the shift ``m`` (the maximum over states; 0 if not finite)."""
    m = jnp.max(logb, -1)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return jnp.exp(logb - m[..., None]), m


def _time_major(a):
    return jnp.swapaxes(a, 0, 1)


def forward(startprob, transmat, logb, mask):
    """Scaled forward pass: normalised filtered probabilities ``(T, N, K)``, the
    normalisers ``c_t`` ``(T, N)`` (1 at padded steps) and the shifted densities
    ``(T, N, K)``; the log-likelihood of each sequence is ``sum_t log c_t + m_t``."""
    b, m = shifted_densities(logb)
    b, m, mk = _time_major(b), m.T, mask.T
    a0 = startprob * b[0]
    c0 = jnp.sum(a0, -1)
    alpha0 = a0 / c0[:, None]

    def step(alpha, inp):
        bt, mt = inp
        a = (alpha @ transmat) * bt
        c = jnp.sum(a, -1)
        alpha = jnp.where(mt[:, None], a / jnp.where(mt, c, 1.0)[:, None], alpha)
        c = jnp.where(mt, c, 1.0)
        return alpha, (alpha, c)

    _, (alphas, cs) = lax.scan(step, alpha0, (b[1:], mk[1:]))
    alphas = jnp.concatenate([alpha0[None], alphas])
    cs = jnp.concatenate([c0[None], cs])
    loglik = jnp.sum(jnp.log(cs) + jnp.where(mk, m, 0.0), 0)
    return alphas, cs, b, loglik


def loglik(startprob, transmat, logb, mask):
    """Log-likelihood ``(N,)`` of each sequence (forward pass only)."""
    return forward(startprob, transmat, logb, mask)[3]


def forward_backward(startprob, transmat, logb, mask):
    """Posterior state probabilities and expected transition counts (:class:`Posterior`)."""
    alphas, cs, b, ll = forward(startprob, transmat, logb, mask)
    mk = mask.T
    k = transmat.shape[0]
    n = logb.shape[0]

    def step(carry, inp):
        beta, acc = carry
        alpha_t, b1, c1, m1 = inp  # alpha at t; densities, normaliser, mask at t + 1
        v = jnp.where(m1[:, None], b1 * beta / c1[:, None], 0.0)
        acc = acc + alpha_t.T @ v
        beta = jnp.where(m1[:, None], v @ transmat.T, 1.0)
        return (beta, acc), beta

    init = (jnp.ones((n, k), logb.dtype), jnp.zeros((k, k), logb.dtype))
    (_, acc), betas = lax.scan(step, init, (alphas[:-1], b[1:], cs[1:], mk[1:]), reverse=True)
    betas = jnp.concatenate([betas, jnp.ones((1, n, k), logb.dtype)])
    gamma = _time_major(alphas * betas) * mask[..., None]
    return Posterior(ll, gamma, jnp.sum(gamma[:, 0], 0), transmat * acc)


# -- parallel in time -----------------------------------------------------------------


def _normalised_product(e1, e2):
    """Associative combination of (matrix, log scale) pairs: the product, rescaled."""
    m1, s1 = e1
    m2, s2 = e2
    p = m1 @ m2
    z = jnp.max(p, axis=(-2, -1), keepdims=True)
    z = jnp.where(z > 0, z, 1.0)
    return p / z, s1 + s2 + jnp.log(z[..., 0, 0])


def forward_backward_parallel(startprob, transmat, logb, mask):
    """:func:`forward_backward` by ``lax.associative_scan`` over time (O(log T) depth).

    The forward messages are prefix products of ``M_t = A diag(b_t)`` (identity at
    padded steps), the backward messages suffix products; each product is rescaled by
    its largest entry and the scale kept in log space.
    """
    b, m = shifted_densities(logb)
    b, m, mk = _time_major(b), m.T, mask.T
    t, n, k = b.shape
    eye = jnp.eye(k, dtype=b.dtype)
    mats = jnp.where(mk[..., None, None], transmat[None, None] * b[:, :, None, :], eye)  # (T, N, K, K)
    first = jnp.broadcast_to(jnp.diag(startprob), (n, k, k)) * b[0][:, None, :]  # diag(pi) diag(b_0)
    mats = mats.at[0].set(first)
    zeros = jnp.zeros((t, n), b.dtype)
    pre, pre_s = lax.associative_scan(_normalised_product, (mats, zeros))
    alpha = jnp.sum(pre, -2)  # sum over the start state: unnormalised filtered probabilities
    alpha_sum = jnp.sum(alpha, -1)
    log_alpha_sum = jnp.log(alpha_sum) + pre_s + jnp.cumsum(jnp.where(mk, m, 0.0), 0)
    ll = log_alpha_sum[-1]
    alphas = alpha / alpha_sum[..., None]
    # backward: beta_t = prod_{s > t} M_s @ 1, as suffix products of M_{t+1} .. M_{T-1}
    shifted = jnp.concatenate([mats[1:], jnp.broadcast_to(eye, (1, n, k, k))])
    suf, suf_s = lax.associative_scan(lambda a, b: _normalised_product(b, a), (shifted, zeros), reverse=True)
    beta = jnp.sum(suf, -1)
    betas = beta / jnp.sum(beta, -1, keepdims=True)
    g = alphas * betas
    g = g / jnp.sum(g, -1, keepdims=True)
    gamma = _time_major(g) * mask[..., None]
    # pairwise: xi_t(i, j) ~ alpha_t(i) A(i, j) b_{t+1}(j) beta_{t+1}(j), normalised per step
    x = alphas[:-1, :, :, None] * transmat[None, None] * (b[1:] * betas[1:])[:, :, None, :]
    x = x / jnp.sum(x, (-2, -1), keepdims=True)
    trans = jnp.sum(jnp.where(mk[1:, :, None, None], x, 0.0), (0, 1))
    return Posterior(ll, gamma, jnp.sum(gamma[:, 0], 0), trans)


# -- Viterbi ------------------------------------------------------------------------------


def viterbi(startprob, transmat, logb, mask):
    """Most probable state paths ``(N, T)`` (the last state repeated at padded steps)
    and their log joint probabilities ``(N,)``, by max-product in log space."""
    n, t, k = logb.shape
    loga = jnp.log(transmat)
    d0 = jnp.log(startprob) + logb[:, 0]
    same = jnp.broadcast_to(jnp.arange(k), (n, k))

    def step(d, inp):
        lb, mt = inp
        s = d[:, :, None] + loga[None]
        bp = jnp.argmax(s, 1)
        d = jnp.where(mt[:, None], jnp.max(s, 1) + lb, d)
        return d, jnp.where(mt[:, None], bp, same)

    d_last, bps = lax.scan(step, d0, (_time_major(logb[:, 1:]), mask[:, 1:].T))
    last = jnp.argmax(d_last, -1)

    def back(s, bp):
        prev = jnp.take_along_axis(bp, s[:, None], 1)[:, 0]
        return prev, prev

    _, path = lax.scan(back, last, bps, reverse=True)
    path = jnp.concatenate([path, last[None]]).T
    return path, jnp.max(d_last, -1)


def posterior(startprob, transmat, logb, mask, parallel=False):
    """The forward-backward of choice: sequential scan, or parallel in time."""
    fb = forward_backward_parallel if parallel else forward_backward
    return fb(startprob, transmat, logb, mask)


__all__ = ["Posterior", "forward", "forward_backward", "forward_backward_parallel", "loglik", "posterior", "viterbi"]
