"""The first-order built-in solvers (L-BFGS, optax gradient ascent) and ``make_solver``.

Both call into optax (L-BFGS's zoom line search evaluates the objective inside
optax's own update), so they always run compiled (``host = False``): driven from
the host, each of optax's many small operations would be a separate dispatch.
The protocol is :class:`mlejax.solvers.Solver`; Newton is in ``_newton.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from .._status import Status
from ._base import (
    RUNNING,
    Objective as Objective,
    ProposeAccept,
    Solver,
    Step,
    code_for_rejected,
    finite,
    flat_but_better,
    secant_decrement,
)
from ._newton import Newton as Newton
from ._trust import TrustRegion as TrustRegion


def _converged(x, g, x_new, g_new, tol):
    """The scale-free test of the first-order solvers: the secant estimate of the gain
    still available (log-likelihood units) is at most ``tol``, after a step that moved."""
    moved = jnp.any(x_new != x)
    return moved & (secant_decrement(jnp, x_new - x, g_new - g, g_new) <= tol)


@dataclasses.dataclass(frozen=True)
class LBFGS(Solver):
    """optax's L-BFGS with a zoom line search (strong Wolfe), for many parameters."""

    memory_size: int = 10
    name = "lbfgs"
    default_tol = 1e-14
    default_maxiter = 2000

    def _opt(self):
        return optax.lbfgs(memory_size=self.memory_size)

    def init(self, obj, x, tol):
        f, g = obj.value_and_grad(x)
        return Step(x, f, g, self._opt().init(x), RUNNING)

    def step(self, obj, x, f, g, state, tol):
        updates, state_new = self._opt().update(g, state, x, value=f, grad=g, value_fn=obj.value)
        x_new = x + updates
        f_new, g_new = optax.value_and_grad_from_state(obj.value)(x_new, state=state_new)
        ok = finite(jnp, f_new, g_new) & ((f_new <= f) | flat_but_better(jnp, f, g, f_new, g_new))
        moved = jnp.any(updates != 0)
        code = jnp.where(ok, RUNNING, code_for_rejected(jnp, f_new))
        code = jnp.where(
            (code == RUNNING) & ~(ok & moved), int(Status.PRECISION_LOSS), code
        )
        code = jnp.where(ok & _converged(x, g, x_new, g_new, tol), int(Status.SUCCESS), code)

        def pick(a, b):
            return jnp.where(ok, a, b)

        state_out = jax.tree_util.tree_map(pick, state_new, state)
        return Step(pick(x_new, x), pick(f_new, f), pick(g_new, g), state_out, code)


@dataclasses.dataclass(frozen=True)
class OptaxAscent(ProposeAccept):
    """Gradient ascent on the log-likelihood with any ``optax.GradientTransformation``.

    The transformation is applied to the gradient of ``-loglik`` (optax minimises),
    so ``optax.adam(1e-2)`` climbs the likelihood. Steps are not line-searched;
    a step to a NaN/inf log-likelihood stops the fit with status ``NONFINITE``.
    Reuse one transformation object across calls: a new one recompiles.
    """

    tx: Any
    name = "optax"
    default_tol = 1e-12
    default_maxiter = 10_000

    def start(self, xp, x, d, tol):
        return Step(x, d.f, d.g, self.tx.init(x), RUNNING)

    def propose(self, obj, x, f, g, state, tol):
        if isinstance(self.tx, optax.GradientTransformationExtraArgs):
            updates, state_new = self.tx.update(g, state, x, value=f, grad=g, value_fn=obj.value)
        else:
            updates, state_new = self.tx.update(g, state, x)
        return x + updates, state_new

    def update(self, xp, x, f, g, state, tol, state_new, x_new, d):
        f_new, g_new = d.f, d.g
        ok = finite(jnp, f_new, g_new)
        code = jnp.where(
            ok, RUNNING, jnp.where(f_new == -jnp.inf, int(Status.UNBOUNDED), int(Status.NONFINITE))
        )
        code = jnp.where(ok & _converged(x, g, x_new, g_new, tol), int(Status.SUCCESS), code)

        def pick(a, b):
            return jnp.where(ok, a, b)

        state_out = jax.tree_util.tree_map(pick, state_new, state)
        return Step(pick(x_new, x), pick(f_new, f), pick(g_new, g), state_out, code)


def make_solver(method) -> Solver:
    """``"newton"``, ``"trust-region"``, ``"lbfgs"``, an optax transformation, or any :class:`Solver` instance."""
    if isinstance(method, str):
        key = method.lower()
        if key == "newton":
            return Newton()
        if key in ("lbfgs", "l-bfgs"):
            return LBFGS()
        if key in ("trust-region", "trust-newton", "trust-exact"):
            return TrustRegion()
        raise ValueError(
            f"method={method!r} is not known; use 'newton' (default), 'trust-region', 'lbfgs', an "
            "optax.GradientTransformation such as optax.adam(1e-2), or a "
            "mlejax.solvers.Solver instance."
        )
    if isinstance(method, optax.GradientTransformation):
        return OptaxAscent(method)
    if isinstance(method, Solver):
        return method
    raise TypeError(
        f"method has type {type(method).__name__}; use 'newton', 'trust-region', 'lbfgs', an "
        "optax.GradientTransformation such as optax.adam(1e-2), or a "
        "mlejax.solvers.Solver instance."
    )
