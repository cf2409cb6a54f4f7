"""The one driver loop: runs any solver, compiled (one ``lax.while_loop``) or on the host.

With a compiled objective (``obj.xp is jax.numpy``) the loop is a
``lax.while_loop``: no host round trip per iteration, so it composes with
``jit``/``vmap``. For a :class:`~mlejax.solvers.ProposeAccept` solver the start's
evaluation is the loop's first iteration, so the model's derivatives appear once in
the compiled program. With a :class:`~mlejax.solvers.HostObjective` (``obj.xp is
numpy``) the same steps run as a Python loop, calling only the model's compiled
derivative kernel.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._status import Status
from ._base import RUNNING, Derivs, ProposeAccept, Step, evaluate


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


def _started(xp, first: Step, maxiter) -> DriverState:
    """The driver's state at the start (iteration 0): ``NONFINITE_START`` unless f and g
    are finite there."""
    finite = xp.isfinite(first.f) & xp.all(xp.isfinite(first.g))
    start_code = xp.where(finite, first.code, np.int32(Status.NONFINITE_START))
    n0 = xp.zeros((), np.int32)
    return DriverState(first.x, first.f, first.g, first.state, n0, _status(xp, n0, maxiter, start_code))


def _cond(s):
    return s.status == RUNNING


def minimise(solver, obj, x0, tol, maxiter) -> DriverState:
    """Minimise ``f = -loglik`` from ``x0``; every solver runs through this loop."""
    xp = getattr(obj, "xp", jnp)
    if xp is jnp and isinstance(solver, ProposeAccept):
        return _one_evaluation_loop(solver, obj, x0, tol, maxiter)

    def body(s):
        st = solver.step(obj, s.x, s.f, s.g, s.solver_state, tol)
        n = s.n_iter + 1
        return DriverState(st.x, st.f, st.g, st.state, n, _status(xp, n, maxiter, st.code))

    if xp is jnp:
        return lax.while_loop(_cond, body, _started(xp, solver.init(obj, x0, tol), maxiter))
    with np.errstate(all="ignore"):  # NaN/inf trials are handled by the solver
        s = _started(xp, solver.init(obj, x0, tol), maxiter)
        while _cond(s):
            s = body(s)
    return s


def _one_evaluation_loop(solver: ProposeAccept, obj, x0, tol, maxiter) -> DriverState:
    """The compiled loop of a :class:`ProposeAccept` solver, the start's evaluation its
    first iteration (marked by ``n_iter == -1``, with blank values in the carry): the
    model is evaluated at one place in the program, the trial point of every iteration
    after it. The same steps in the same order as ``init`` then ``step``."""
    x0 = jnp.asarray(x0)
    f = jax.ShapeDtypeStruct((), x0.dtype)
    d0 = Derivs(f, jax.ShapeDtypeStruct(x0.shape, x0.dtype),
                jax.ShapeDtypeStruct(x0.shape * 2, x0.dtype) if solver.order > 1 else None)
    shapes = jax.eval_shape(lambda x, d, t: solver.start(jnp, x, d, t), x0, d0, tol)
    blank = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    init = DriverState(x0, blank.f, blank.g, blank.state, jnp.asarray(-1, np.int32), jnp.asarray(RUNNING, np.int32))

    def body(s):
        starting = s.n_iter < 0
        x_trial, plan = solver.propose(obj, s.x, s.f, s.g, s.solver_state, tol)
        x_new = jnp.where(starting, x0, x_trial)
        # in the carry's dtypes (a log-likelihood that returns float16 is noted when traced)
        d = jax.tree_util.tree_map(lambda a, b: a.astype(b.dtype), evaluate(obj, x_new, solver.order), d0)

        def stepped():
            st = solver.update(jnp, s.x, s.f, s.g, s.solver_state, tol, plan, x_new, d)
            n = s.n_iter + 1
            return DriverState(st.x, st.f, st.g, st.state, n, _status(jnp, n, maxiter, st.code))

        # a select under vmap; unbatched, the start's logic runs in the first iteration only
        return lax.cond(starting, lambda: _started(jnp, solver.start(jnp, x0, d, tol), maxiter), stepped)

    return lax.while_loop(_cond, body, init)
