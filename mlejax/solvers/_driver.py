"""The one driver loop: runs any solver, compiled (one ``lax.while_loop``) or on the host.

With a compiled objective (``obj.xp is jax.numpy``) the loop is a
``lax.while_loop``: no host round trip per iteration, so it composes with
``jit``/``vmap``. With a :class:`~mlejax.solvers.HostObjective` (``obj.xp is
numpy``) the same ``cond``/``body`` run as a Python loop, calling only the
model's compiled derivative kernel.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from .._status import Status
from ._base import RUNNING


class DriverState(NamedTuple):
    x: Any
    f: Any
    g: Any
    solver_state: Any
    n_iter: Any
    status: Any


def _status(xp, n_iter, maxiter, code):
    """The status after a step: the solver's own code (SUCCESS when it converged, or why
    it cannot go on), else MAX_ITER once ``maxiter`` steps were taken."""
    code = xp.asarray(code, np.int32)
    out_of_steps = (code == RUNNING) & (n_iter >= maxiter)
    return xp.where(out_of_steps, np.int32(Status.MAX_ITER), code).astype(np.int32)


def minimise(solver, obj, x0, tol, maxiter) -> DriverState:
    """Minimise ``f = -loglik`` from ``x0``; every solver runs through this loop."""
    xp = getattr(obj, "xp", jnp)
    first = solver.init(obj, x0, tol)
    finite = xp.isfinite(first.f) & xp.all(xp.isfinite(first.g))
    start_code = xp.where(finite, first.code, np.int32(Status.NONFINITE_START))
    n0 = xp.zeros((), np.int32)
    init = DriverState(first.x, first.f, first.g, first.state, n0,
                       _status(xp, n0, maxiter, start_code))

    def cond(s):
        return s.status == RUNNING

    def body(s):
        st = solver.step(obj, s.x, s.f, s.g, s.solver_state, tol)
        n = s.n_iter + 1
        return DriverState(st.x, st.f, st.g, st.state, n, _status(xp, n, maxiter, st.code))

    if xp is jnp:
        return lax.while_loop(cond, body, init)
    with np.errstate(all="ignore"):  # NaN/inf trials are handled by the solver
        s = init
        while cond(s):
            s = body(s)
    return s
