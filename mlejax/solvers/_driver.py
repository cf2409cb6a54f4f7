"""The one driver loop: runs any solver in a single ``lax.while_loop``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import lax

from .._status import Status

RUNNING = int(Status.RUNNING)


class DriverState(NamedTuple):
    x: Any
    f: Any
    g: Any
    solver_state: Any
    n_iter: Any
    status: Any


def scaled_gradient(x, f, g):
    """max_i |g_i| * max(|x_i|, 1) / max(|f|, 1): the relative change of the objective
    for a relative change of each parameter (scale-free, Dennis & Schnabel)."""
    num = jnp.abs(g) * jnp.maximum(jnp.abs(x), 1.0)
    return jnp.max(num, initial=0.0) / jnp.maximum(jnp.abs(f), 1.0)


def _status(x, f, g, n_iter, tol, maxiter, code):
    """The status after a step: the solver's own code first, then convergence, then maxiter."""
    converged = scaled_gradient(x, f, g) <= tol
    status = jnp.where(converged, int(Status.SUCCESS), RUNNING)
    status = jnp.where((status == RUNNING) & (n_iter >= maxiter), int(Status.MAX_ITER), status)
    return jnp.where(code == RUNNING, status, code).astype(jnp.int32)


def minimise(solver, obj, x0, tol, maxiter) -> DriverState:
    """Minimise ``obj.value`` from ``x0``; every solver runs through this loop."""
    f, g, state = solver.init(obj, x0)
    finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
    n0 = jnp.zeros((), jnp.int32)
    start_code = jnp.where(finite, RUNNING, int(Status.NONFINITE_START))
    init = DriverState(x0, f, g, state, n0, _status(x0, f, g, n0, tol, maxiter, start_code))

    def cond(s):
        return s.status == RUNNING

    def body(s):
        x, f, g, state, code = solver.step(obj, s.x, s.f, s.g, s.solver_state)
        n = s.n_iter + 1
        return DriverState(x, f, g, state, n, _status(x, f, g, n, tol, maxiter, code))

    return lax.while_loop(cond, body, init)
