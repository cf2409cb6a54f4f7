"""Small solver pieces run by the one driver loop in :mod:`mlejax._driver`.

Every solver minimises ``f = -loglik`` on the unconstrained scale and has

- ``init(obj, x) -> (f, g, state)``
- ``step(obj, x, f, g, state) -> (x, f, g, state, code)`` where ``code`` is
  ``Status.RUNNING`` or the reason the solver cannot go on
- ``hessian(state)``: the Hessian of ``f`` at ``x`` if the solver keeps one, else None.

Solvers are frozen dataclasses (hashable), so they are part of the jit cache key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._linalg import eigh as small_eigh
from .._status import Status

RUNNING = int(Status.RUNNING)


class Objective(NamedTuple):
    """``f = -loglik`` on the unconstrained scale, with its derivatives."""

    value: Callable

    def value_and_grad(self, x):
        return jax.value_and_grad(self.value)(x)

    def value_grad_hess(self, x):
        """f, gradient and Hessian in one forward-over-reverse pass."""

        def grad_aux(x):
            f, g = jax.value_and_grad(self.value)(x)
            return g, (f, g)

        h, (f, g) = jax.jacfwd(grad_aux, has_aux=True)(x)
        return f, g, 0.5 * (h + h.T)


def _finite(*xs):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in xs]))


def _flat_but_better(f, g, f_new, g_new):
    """At the optimum f is flat to rounding: a step that leaves f unchanged to within
    a few ulps but shrinks the gradient is progress."""
    eps = jnp.finfo(jnp.result_type(f)).eps
    same_f = jnp.abs(f_new - f) <= 16 * eps * jnp.maximum(jnp.abs(f), 1.0)
    return same_f & (jnp.linalg.norm(g_new) < jnp.linalg.norm(g))


def _code_for_rejected(f_new):
    """A rejected step whose f is -inf means the log-likelihood reached +inf."""
    return jnp.where(f_new == -jnp.inf, int(Status.UNBOUNDED), RUNNING)


class NewtonState(NamedTuple):
    hess: Any
    lam: Any
    nu: Any


@dataclasses.dataclass(frozen=True)
class Newton:
    """Newton's method with the exact Hessian, made safe far from the optimum.

    Each step solves ``(|H| + lam D) p = -g`` where ``|H|`` replaces the eigenvalues
    of the Jacobi-scaled Hessian by their absolute values (so the step always goes
    uphill in the log-likelihood, also at a saddle), ``D`` is the Hessian's
    diagonal (Marquardt's scaling) and ``lam`` is a Levenberg-Marquardt damping:
    zero near the optimum (pure Newton, quadratic convergence), adapted by
    Nielsen's rule from the ratio of the actual to the predicted gain. A step is
    accepted only if the log-likelihood is finite and rises by at least ``accept``
    times the predicted gain; a NaN/inf or lower value is never accepted.
    """

    accept: float = 1e-4

    name = "newton"

    def init(self, obj, x):
        f, g, h = obj.value_grad_hess(x)
        zero = jnp.zeros((), x.dtype)
        return f, g, NewtonState(h, zero, zero + 2.0)

    def hessian(self, state):
        return state.hess

    def step(self, obj, x, f, g, state):
        eps = jnp.finfo(x.dtype).eps
        # Jacobi scaling makes the eigenvalue floor and the damping unit-free.
        dg = jnp.abs(jnp.diag(state.hess))
        s = jnp.where(dg > 0, jnp.sqrt(dg), 1.0)
        w_signed, v = small_eigh(state.hess / jnp.outer(s, s))
        w = jnp.abs(w_signed)
        scale = jnp.max(w, initial=0.0)
        gv = v.T @ (g / s)
        w_mod = jnp.maximum(w, scale * eps)
        q = -gv / (w_mod + state.lam)  # the step in the scaled eigenbasis
        p = (v @ q) / s
        # Converged when the exact Newton step is negligible: at most 1e-6 standard
        # errors (or 1e-10 relative) in every coordinate, with a positive definite
        # information. Unlike the gradient test this holds at the optimum of a noisy
        # surface too (least squares, where residuals carry rounding of eps * |y|).
        pd = jnp.all(w_signed > 1e4 * eps * scale)
        w_pd = jnp.where(pd, w_signed, 1.0)
        p_newton = -(v @ (gv / w_pd)) / s
        se = jnp.sqrt((v**2) @ (1.0 / w_pd)) / s
        step_size = jnp.abs(p_newton) / jnp.maximum(se, 1e-4 * jnp.abs(x))
        negligible = pd & jnp.all(step_size <= 1e-6)
        # At the noise floor of a badly scaled surface the step cannot shrink below
        # ~1e-5 standard errors: a rejected step that small also means converged.
        within_noise = pd & jnp.all(step_size <= 1e-4)
        p = jnp.where(negligible, p_newton, p)
        x_new = x + p
        f_new, g_new, h_new = obj.value_grad_hess(x_new)
        # gain ratio: actual decrease over the decrease the (modified) quadratic model predicts
        predicted = -(gv @ q + 0.5 * jnp.sum(w_mod * q**2))
        rho = (f - f_new) / jnp.where(predicted > 0, predicted, jnp.inf)
        # A negligible step can only improve f (up to rounding noise in f): take it.
        ok = _finite(f_new, g_new, h_new) & (
            (rho > self.accept) | _flat_but_better(f, g, f_new, g_new) | negligible
        )
        # Nielsen's damping update: shrink after good steps, grow after poor or rejected ones
        factor = jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        lam_ok = jnp.where(rho < 0.25, jnp.maximum(state.lam, 1e-3), state.lam) * factor
        lam_ok = jnp.where(lam_ok > 1e-8, lam_ok, 0.0)
        lam = jnp.where(ok, lam_ok, jnp.maximum(state.lam * state.nu, 1e-3))
        nu = jnp.where(ok, 2.0, 2.0 * state.nu)
        rel_step = jnp.max(jnp.abs(p) / jnp.maximum(jnp.abs(x), 1.0), initial=0.0)
        stalled = ~ok & ((lam > 1e16) | (rel_step < eps))
        code = jnp.where(ok, RUNNING, _code_for_rejected(f_new))
        # Out of step lengths: NaN/inf trials mean the surface itself is broken there,
        # finite ones that the optimum is lost in rounding.
        given_up = jnp.where(
            _finite(f_new, g_new, h_new), int(Status.PRECISION_LOSS), int(Status.NONFINITE)
        )
        code = jnp.where(stalled & (code == RUNNING), given_up, code)
        code = jnp.where(negligible | (within_noise & ~ok), int(Status.SUCCESS), code)
        pick = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
        return (
            pick(x_new, x),
            pick(f_new, f),
            pick(g_new, g),
            NewtonState(pick(h_new, state.hess), lam, nu),
            code,
        )


@dataclasses.dataclass(frozen=True)
class LBFGS:
    """optax's L-BFGS with a zoom line search (strong Wolfe), for many parameters."""

    memory_size: int = 10
    name = "lbfgs"

    def _opt(self):
        return optax.lbfgs(memory_size=self.memory_size)

    def init(self, obj, x):
        f, g = obj.value_and_grad(x)
        return f, g, self._opt().init(x)

    def hessian(self, state):
        return None

    def step(self, obj, x, f, g, state):
        updates, state_new = self._opt().update(g, state, x, value=f, grad=g, value_fn=obj.value)
        x_new = x + updates
        f_new, g_new = optax.value_and_grad_from_state(obj.value)(x_new, state=state_new)
        ok = _finite(f_new, g_new) & ((f_new <= f) | _flat_but_better(f, g, f_new, g_new))
        moved = jnp.any(updates != 0)
        code = jnp.where(ok, RUNNING, _code_for_rejected(f_new))
        code = jnp.where(
            (code == RUNNING) & ~(ok & moved), int(Status.PRECISION_LOSS), code
        )
        pick = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
        state_out = jax.tree_util.tree_map(pick, state_new, state)
        return pick(x_new, x), pick(f_new, f), pick(g_new, g), state_out, code


@dataclasses.dataclass(frozen=True)
class OptaxAscent:
    """Gradient ascent on the log-likelihood with any ``optax.GradientTransformation``.

    The transformation is applied to the gradient of ``-loglik`` (optax minimises),
    so ``optax.adam(1e-2)`` climbs the likelihood. Steps are not line-searched;
    a step to a NaN/inf log-likelihood stops the fit with status ``NONFINITE``.
    Reuse one transformation object across calls: a new one recompiles.
    """

    tx: Any
    name = "optax"

    def init(self, obj, x):
        f, g = obj.value_and_grad(x)
        return f, g, self.tx.init(x)

    def hessian(self, state):
        return None

    def step(self, obj, x, f, g, state):
        if isinstance(self.tx, optax.GradientTransformationExtraArgs):
            updates, state_new = self.tx.update(g, state, x, value=f, grad=g, value_fn=obj.value)
        else:
            updates, state_new = self.tx.update(g, state, x)
        x_new = x + updates
        f_new, g_new = obj.value_and_grad(x_new)
        ok = _finite(f_new, g_new)
        code = jnp.where(
            ok, RUNNING, jnp.where(f_new == -jnp.inf, int(Status.UNBOUNDED), int(Status.NONFINITE))
        )
        pick = lambda a, b: jnp.where(ok, a, b)  # noqa: E731
        state_out = jax.tree_util.tree_map(pick, state_new, state)
        return pick(x_new, x), pick(f_new, f), pick(g_new, g), state_out, code


def make_solver(method):
    """``"newton"``, ``"lbfgs"``, an optax transformation, or a solver object."""
    if isinstance(method, str):
        key = method.lower()
        if key == "newton":
            return Newton()
        if key in ("lbfgs", "l-bfgs"):
            return LBFGS()
        raise ValueError(
            f"method={method!r} is not known; use 'newton' (default), 'lbfgs', or an "
            "optax.GradientTransformation such as optax.adam(1e-2)."
        )
    if isinstance(method, optax.GradientTransformation):
        return OptaxAscent(method)
    if isinstance(method, (Newton, LBFGS, OptaxAscent)):
        return method
    raise TypeError(
        f"method has type {type(method).__name__}; use 'newton', 'lbfgs', or an "
        "optax.GradientTransformation such as optax.adam(1e-2)."
    )
