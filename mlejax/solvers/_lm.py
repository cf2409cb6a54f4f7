"""Levenberg-Marquardt for nonlinear least squares (the first stage of ``curve_fit``)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._status import Status
from ._base import RUNNING, Solver, Step


class LMState(NamedTuple):
    lam: Any
    nu: Any
    scale: Any
    r: Any
    jac: Any


@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt(Solver):
    """Marquardt's damped Gauss-Newton on ``1/2 |r(u)|^2``: Moré's (1978) scaling by the
    largest column norms of the Jacobian seen so far, Nielsen's (1999) damping update
    from the gain ratio, and steps solved by least squares on the augmented system (not
    the normal equations, so conditioning is not squared). Implements the solver
    protocol of :mod:`mlejax.solvers` (compiled only: its kernel is the residual
    Jacobian, not the log-likelihood), so it runs in the same driver loop."""

    residuals: Any  # u -> r (hashable: part of the jit cache key)
    name = "levenberg-marquardt"
    default_tol = 0.0
    default_maxiter = 2000

    def init(self, obj, u, tol):
        r = self.residuals(u)
        jac = jax.jacfwd(self.residuals)(u)
        scale = jnp.maximum(jnp.linalg.norm(jac, axis=0), jnp.finfo(u.dtype).eps)
        one = jnp.ones((), u.dtype)
        state = LMState(1e-3 * one, 2.0 * one, scale, r, jac)
        return Step(u, 0.5 * jnp.sum(r**2), jac.T @ r, state, RUNNING)

    def step(self, obj, u, f, g, state, tol):
        eps = jnp.finfo(u.dtype).eps
        k = u.shape[0]
        d = state.scale
        a = jnp.concatenate([state.jac, jnp.sqrt(state.lam) * jnp.diag(d)])
        b = jnp.concatenate([-state.r, jnp.zeros((k,), u.dtype)])
        p = jnp.linalg.lstsq(a, b)[0]
        u_new = u + p
        r_new = self.residuals(u_new)
        f_new = 0.5 * jnp.sum(r_new**2)
        jac_new = jax.jacfwd(self.residuals)(u_new)
        g_new = jac_new.T @ r_new
        # gain ratio: actual over predicted reduction of 1/2 |r|^2
        jp = state.jac @ p
        predicted = -(jnp.dot(state.r, jp) + 0.5 * jnp.dot(jp, jp))
        rho = (f - f_new) / jnp.where(predicted > 0, predicted, jnp.inf)
        ok = jnp.isfinite(f_new) & jnp.all(jnp.isfinite(g_new)) & (f_new < f) & (rho > 0)
        lam = jnp.where(
            ok,
            state.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3),
            state.lam * state.nu,
        )
        nu = jnp.where(ok, 2.0, 2.0 * state.nu)
        small_step = jnp.max(jnp.abs(p) / (jnp.abs(u) + 1e-8)) < 1e3 * eps
        # LM has done its job when it can no longer move: the Newton stage certifies.
        done = small_step | (lam > 1e30) | (f_new == 0)
        code = jnp.where(done, int(Status.SUCCESS), RUNNING)
        pick = lambda a_, b_: jnp.where(ok, a_, b_)  # noqa: E731
        jac_out = pick(jac_new, state.jac)
        scale = jnp.maximum(state.scale, jnp.linalg.norm(jac_out, axis=0))
        return Step(
            pick(u_new, u),
            pick(f_new, f),
            pick(g_new, g),
            LMState(lam, nu, scale, pick(r_new, state.r), jac_out),
            code,
        )
