"""A GLM's log-likelihood whose Hessian is ``X' W X``: one matrix product.

The log-likelihood of a GLM, ``sum_i w_i l(y_i, eta_i, nu)`` with ``eta = X beta +
offset``, has the Hessian ``X' diag(w l''(eta)) X`` in ``beta`` (the Fisher-scoring /
IRLS structure), plus a border for the nuisance parameter ``nu`` (``sigma``,
``alpha``, ``shape``). Autodiff's forward-over-reverse Hessian pushes the ``p``
basis directions through ``X beta`` (the product ``X I_p``, as costly as ``X' W X``
itself) before the same ``X' W X``: twice the work. Here the log-likelihood and its
gradient are ``jax.custom_jvp`` functions whose derivative rules are those closed
forms, so every path that differentiates the log-likelihood (``mj.fit`` on the host or
compiled, ``fit_batch``, the profile likelihood, the bootstrap, sharded data) builds
``X' W X`` with one product, and the chain rule to the optimiser's scale stays
autodiff's.

The weights are the *observed* ones, ``l''(eta)`` of the per-observation
log-density (elementwise autodiff), not the expected ones: for canonical links
(logit, Poisson log, Normal identity) they coincide, for the others (probit, Gamma
with a log link, NB2) the fit is Newton-Raphson rather than Fisher scoring, and the
standard errors stay the inverse observed information, exactly as the autodiff
path's.

Derivatives with respect to the data (``y``, ``X``, ``offset``, ``w``) fall back to
plain autodiff of the same formula, so nothing is ever silently wrong.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


def _is_zero(t) -> bool:
    return isinstance(t, SymbolicZero)


def _dense(primals, tangents):
    return tuple(jnp.zeros(jnp.shape(p), jnp.result_type(p)) if _is_zero(t) else t
                 for p, t in zip(primals, tangents))


def _elementwise(lp, eta, nu):
    """``l``, ``dl/deta``, ``d2l/deta2`` per observation (``lp`` is elementwise in
    ``eta``, so a forward pass with unit tangents gives the diagonal)."""
    one = jnp.ones_like(eta)

    def d_eta(e):
        return jax.jvp(lambda e: lp(e, nu), (e,), (one,))

    (value, s), (_, h) = jax.jvp(d_eta, (eta,), (one,))
    return value, s, h


def _nuisance_terms(lp, eta, nu):
    """``dl/dnu``, ``d2l/deta dnu`` and ``d2l/dnu2`` per observation."""
    one = jnp.ones_like(nu)

    def d_nu(v):
        return jax.jvp(lambda v: lp(eta, v), (v,), (one,))[1]

    def d_eta(v):
        return jax.jvp(lambda e: lp(e, v), (eta,), (jnp.ones_like(eta),))[1]

    g, h_nn = jax.jvp(d_nu, (nu,), (one,))
    h_en = jax.jvp(d_eta, (nu,), (one,))[1]
    return g, h_en, h_nn


def structured_loglik(logpdf, has_nuisance: bool):
    """``total(beta, nu, y, x, offset, w) -> sum_i w_i logpdf(y_i, eta_i, nu)`` (rows of
    weight 0 left out) with derivative rules built on ``X' W X``. ``logpdf(y, eta, nu)``
    is the elementwise log-density; ``nu`` is ignored unless ``has_nuisance``."""

    def plain(beta, nu, y, x, offset, w):
        lp = logpdf(y, x @ beta + offset, nu)
        return jnp.sum(jnp.where(w > 0, w * lp, 0.0))

    plain_grad = jax.grad(plain, argnums=(0, 1))

    def lp_of(y):
        return lambda e, v: logpdf(y, e, v)

    def weighted(w, a):
        return jnp.where(w > 0, w * a, 0.0)

    @jax.custom_jvp
    def gradient(beta, nu, y, x, offset, w):
        eta = x @ beta + offset
        _, s, _ = _elementwise(lp_of(y), eta, nu)
        g_nu = jnp.sum(weighted(w, _nuisance_terms(lp_of(y), eta, nu)[0])) if has_nuisance else jnp.zeros_like(nu)
        return weighted(w, s) @ x, g_nu

    def _gradient_jvp(primals, tangents):
        beta, nu, y, x, offset, w = primals
        if not all(map(_is_zero, tangents[2:])):  # derivatives in the data: plain autodiff
            return jax.jvp(plain_grad, primals, _dense(primals, tangents))
        eta = x @ beta + offset
        _, s, h = _elementwise(lp_of(y), eta, nu)
        xw = weighted(w, h)[:, None] * x
        g_beta = weighted(w, s) @ x
        hess = x.T @ xw  # the one matrix product (X' W X)
        db, dn = tangents[:2]
        t_beta = jnp.zeros_like(g_beta) if _is_zero(db) else hess @ db
        if not has_nuisance:
            return (g_beta, jnp.zeros_like(nu)), (t_beta, jnp.zeros_like(nu))
        g, h_en, h_nn = _nuisance_terms(lp_of(y), eta, nu)
        h_bn = weighted(w, h_en) @ x
        g_nu = jnp.sum(weighted(w, g))
        t_nu = jnp.zeros_like(nu)
        if not _is_zero(db):
            t_nu = t_nu + h_bn @ db
        if not _is_zero(dn):
            t_beta = t_beta + h_bn * dn
            t_nu = t_nu + jnp.sum(weighted(w, h_nn)) * dn
        return (g_beta, g_nu), (t_beta, t_nu)

    gradient.defjvp(_gradient_jvp, symbolic_zeros=True)

    @jax.custom_jvp
    def total(beta, nu, y, x, offset, w):
        return plain(beta, nu, y, x, offset, w)

    def _total_jvp(primals, tangents):
        if not all(map(_is_zero, tangents[2:])):
            return jax.jvp(plain, primals, _dense(primals, tangents))
        value = plain(*primals)
        g_beta, g_nu = gradient(*primals)
        db, dn = tangents[:2]
        t = jnp.zeros_like(value)
        if not _is_zero(db):
            t = t + g_beta @ db
        if has_nuisance and not _is_zero(dn):
            t = t + g_nu * dn
        return value, t

    total.defjvp(_total_jvp, symbolic_zeros=True)
    return total


__all__ = ["structured_loglik"]
