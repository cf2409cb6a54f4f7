"""The solver protocol: what every optimiser run by the driver loop implements.

A solver minimises ``f = -loglik`` on the unconstrained scale. It never calls the
model directly: it asks an objective ``obj`` for ``f``, its gradient and (for
second-order solvers) its Hessian at a point. There are two objectives with one
interface:

- :class:`Objective` (``obj.xp is jax.numpy``): the model's derivatives traced
  into the surrounding compiled program. The driver runs the solver inside one
  ``lax.while_loop``; this is what runs under ``jax.jit``/``jax.vmap``, in
  ``fit_batch``, the profile likelihood and the bootstrap.
- :class:`HostObjective` (``obj.xp is numpy``): a single fit with concrete inputs.
  Only the model's derivative kernel is compiled (once per model, data passed as
  an argument); the solver's own logic runs on the host in numpy, on k-vectors and
  k x k matrices, and is never compiled.

A solver whose ``step`` uses only ``obj.xp`` array functions (``where``, ``abs``,
``linalg``...) runs both ways from one definition; it says so with
``host = True``. One that calls into JAX itself (optax's L-BFGS line search, say)
keeps ``host = False`` and always runs compiled.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._status import Status

RUNNING = int(Status.RUNNING)


class Step(NamedTuple):
    """What :meth:`Solver.init` and :meth:`Solver.step` return."""

    x: Any  # the (new) point, flat unconstrained
    f: Any  # -loglik there
    g: Any  # its gradient
    state: Any  # the solver's own state (a pytree)
    code: Any  # Status.RUNNING, or the reason to stop (SUCCESS when converged)


class Derivs(NamedTuple):
    """``f = -loglik`` at a point with its gradient and (order 2) Hessian."""

    f: Any
    g: Any
    h: Any = None


def derivatives(fn, x, order: int, gradient_only=None) -> Derivs:
    """``fn(x)`` with its gradient (order 1), and its Hessian (order 2) in one
    forward-over-reverse pass, symmetrised. The one definition of the model's
    derivative kernel, traced on its own (host fits) or inside a compiled fit.

    ``gradient_only``: a traced boolean deciding at run time whether the Hessian is
    computed (zeros where it is not). The value and gradient are linearised once and
    the Hessian's k forward passes sit in a branch, so one compiled program serves
    both the solver and the checks that need only gradients, with the model's forward
    and reverse passes compiled once, not once per branch (the Hessian equals the
    ``jacfwd`` one to rounding)."""
    if order < 2:
        f, g = jax.value_and_grad(fn)(x)
        return Derivs(f, g)

    def grad_aux(x):
        f, g = jax.value_and_grad(fn)(x)
        return g, (f, g)

    if gradient_only is None:
        h, (f, g) = jax.jacfwd(grad_aux, has_aux=True)(x)
    else:
        g, tangent, (f, _) = jax.linearize(grad_aux, x, has_aux=True)
        h = jax.lax.cond(gradient_only, lambda: jnp.zeros((x.size, x.size), x.dtype),
                         lambda: jax.vmap(tangent)(jnp.eye(x.size, dtype=x.dtype)))
    return Derivs(f, g, 0.5 * (h + h.T))


class Objective(NamedTuple):
    """``f = -loglik`` on the unconstrained scale, traced into compiled code."""

    value: Callable
    xp = jnp

    def value_and_grad(self, x):
        d = derivatives(self.value, x, 1)
        return d.f, d.g

    def value_grad_hess(self, x):
        return tuple(derivatives(self.value, x, 2))


class HostObjective(NamedTuple):
    """``f = -loglik`` evaluated by a compiled kernel ``kernel(x, order) -> Derivs`` of
    numpy arrays of ``dtype``: a solver's logic then runs on the host."""

    kernel: Callable
    dtype: Any
    xp = np

    def _eval(self, x, order):
        d = self.kernel(np.asarray(x, self.dtype), order)
        return tuple(a for a in d if a is not None)

    def value_and_grad(self, x):
        return self._eval(x, 1)

    def value_grad_hess(self, x):
        return self._eval(x, 2)

    @property
    def value(self):
        return lambda x: self._eval(x, 1)[0]


class Solver(abc.ABC):
    """The base of every solver (built-in or user-written); ``method=`` takes any instance.

    Subclass it and implement :meth:`init` and :meth:`step`; set ``name``,
    ``default_tol`` and ``default_maxiter`` (used when ``fit`` gets ``tol=None`` /
    ``maxiter=None``), ``host = True`` if ``step`` uses only ``obj.xp`` array
    functions (then a single fit drives it on the host and compiles only the
    model), ``order = 2`` if it asks for Hessians, and ``hessian`` if the state keeps the Hessian at the current point.
    Solvers must be hashable (e.g. frozen dataclasses): they key the compiled
    fit's cache.

    The driver calls ``init`` once and ``step`` until the returned ``code`` is not
    ``Status.RUNNING`` or ``maxiter`` steps were taken. A solver that evaluates the
    model once per step, at the point it proposes, can subclass :class:`ProposeAccept`
    instead (``start``, ``propose``, ``update``): its compiled loop then holds one
    instance of the model's derivatives, not two (the built-in Newton, trust-region
    and optax solvers do). A step that cannot improve must return the old point with
    a code saying why (``PRECISION_LOSS``, ``NONFINITE``, ``UNBOUNDED``). Convergence (``SUCCESS``) should be judged by a
    test that does not change when a constant is added to the log-likelihood or a
    parameter is rescaled: :func:`secant_decrement` gives one for any solver, and
    Newton uses its exact decrement ``g' H^-1 g``. ``tol`` is a threshold on such a
    quantity in log-likelihood units.

    Examples:
        >>> import dataclasses, jax.numpy as jnp, mlejax as mj
        >>> from mlejax.solvers import Solver, Step, secant_decrement
        >>> @dataclasses.dataclass(frozen=True)
        ... class Ascent(Solver):
        ...     rate: float = 0.1
        ...     name = "ascent"
        ...     host = True
        ...     def init(self, obj, x, tol):
        ...         f, g = obj.value_and_grad(x)
        ...         return Step(x, f, g, None, mj.Status.RUNNING)
        ...     def step(self, obj, x, f, g, state, tol):
        ...         xp = obj.xp
        ...         x_new = x - self.rate * g
        ...         f_new, g_new = obj.value_and_grad(x_new)
        ...         done = secant_decrement(xp, x_new - x, g_new - g, g_new) <= tol
        ...         code = xp.where(done, int(mj.Status.SUCCESS), int(mj.Status.RUNNING))
        ...         return Step(x_new, f_new, g_new, None, code)
        >>> res = mj.fit(lambda p, x: -jnp.sum((x - p) ** 2), 0.0, jnp.arange(3.0),
        ...              method=Ascent(), maxiter=500)
        >>> round(float(res.params), 4), res.method
        (1.0, 'ascent')
    """

    name: ClassVar[str] = "solver"
    default_tol: ClassVar[float] = 1e-10
    default_maxiter: ClassVar[int] = 1000
    host: ClassVar[bool] = False
    order: ClassVar[int] = 1  # the highest derivative ``step`` asks ``obj`` for

    @abc.abstractmethod
    def init(self, obj, x, tol) -> Step:
        """Evaluate the objective at the start ``x``; return its :class:`Step`."""

    @abc.abstractmethod
    def step(self, obj, x, f, g, state, tol) -> Step:
        """One iteration from ``x`` (where ``f``, ``g`` were computed)."""

    def hessian(self, state):
        """The Hessian of ``f`` at the current point if the state keeps it, else None."""
        return None


def evaluate(obj, x, order: int) -> Derivs:
    """``f`` at ``x`` with its gradient (and Hessian, order 2): one evaluation of the model."""
    return Derivs(*(obj.value_grad_hess(x) if order > 1 else obj.value_and_grad(x)))


class ProposeAccept(Solver):
    """A solver whose every iteration evaluates the model once, at the point it proposes.

    Implement :meth:`start`, :meth:`propose` and :meth:`update` instead of ``init`` and
    ``step`` (which this class defines from them). Knowing where the one evaluation is,
    the compiled driver loop makes the start's evaluation the loop's first iteration:
    the model's derivatives then appear once in the compiled program, not twice (the
    start and the loop body). Driven on the host (``host = True``), ``init`` and ``step``
    run as they are defined here: the same steps either way.

    Examples:
        >>> import dataclasses, jax, jax.numpy as jnp, mlejax as mj
        >>> from mlejax.solvers import ProposeAccept, Step, secant_decrement
        >>> @dataclasses.dataclass(frozen=True)
        ... class Ascent(ProposeAccept):
        ...     rate: float = 0.1
        ...     name = "ascent"
        ...     host = True
        ...     def start(self, xp, x, d, tol):
        ...         return Step(x, d.f, d.g, None, mj.Status.RUNNING)
        ...     def propose(self, obj, x, f, g, state, tol):
        ...         return x - self.rate * g, None
        ...     def update(self, xp, x, f, g, state, tol, plan, x_new, d):
        ...         done = secant_decrement(xp, x_new - x, d.g - g, d.g) <= tol
        ...         code = xp.where(done, int(mj.Status.SUCCESS), int(mj.Status.RUNNING))
        ...         return Step(x_new, d.f, d.g, None, code)
        >>> ll = lambda p, x: -jnp.sum((x - p) ** 2)
        >>> res = jax.jit(lambda x: mj.fit(ll, 0.0, x, method=Ascent(), maxiter=500))(jnp.arange(3.0))
        >>> round(float(res.params), 4), int(res.n_iter) == int(mj.fit(ll, 0.0, jnp.arange(3.0), method=Ascent()).n_iter)
        (1.0, True)
    """

    @abc.abstractmethod
    def start(self, xp, x, d: Derivs, tol) -> Step:
        """The :class:`Step` at the start ``x`` from its derivatives ``d`` (evaluates nothing)."""

    @abc.abstractmethod
    def propose(self, obj, x, f, g, state, tol):
        """``(trial point, plan)``: where to evaluate next, and what :meth:`update` needs."""

    @abc.abstractmethod
    def update(self, xp, x, f, g, state, tol, plan, x_new, d: Derivs) -> Step:
        """The :class:`Step` once the trial point ``x_new``'s derivatives ``d`` are known."""

    def init(self, obj, x, tol):
        return self.start(obj.xp, x, evaluate(obj, x, self.order), tol)

    def step(self, obj, x, f, g, state, tol):
        x_new, plan = self.propose(obj, x, f, g, state, tol)
        return self.update(obj.xp, x, f, g, state, tol, plan, x_new, evaluate(obj, x_new, self.order))


def secant_decrement(xp, s, y, g):
    """An estimate of ``g' H^-1 g`` (twice the gain still available, in
    log-likelihood units) from the last step ``s`` and gradient change ``y``:
    ``|g|^2 s's / s'y`` (the inverse curvature along the last step; infinite when
    that curvature is not positive). Unchanged by adding a constant to the
    log-likelihood or rescaling all parameters by one factor."""
    sy = xp.sum(s * y)
    ss = xp.sum(s * s)
    return xp.where(sy > 0, xp.sum(g * g) * ss / xp.where(sy > 0, sy, 1.0), xp.inf)


def finite(xp, *arrays):
    """True where every array is finite everywhere."""
    return xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays]))


def flat_but_better(xp, f, g, f_new, g_new):
    """At the optimum f is flat to rounding: a step that leaves f unchanged to within
    a few ulps but shrinks the gradient is progress."""
    eps = xp.finfo(xp.result_type(f)).eps
    same_f = xp.abs(f_new - f) <= 16 * eps * xp.maximum(xp.abs(f), 1.0)
    return same_f & (xp.linalg.norm(g_new) < xp.linalg.norm(g))


def code_for_rejected(xp, f_new):
    """A rejected step whose f is -inf means the log-likelihood reached +inf."""
    return xp.where(f_new == -xp.inf, int(Status.UNBOUNDED), RUNNING)
