"""Trust-region Newton: the exact quadratic subproblem on the k x k Hessian.

Written once against the array namespace ``obj.xp`` (host numpy for a single fit,
``jax.numpy`` inside the compiled loop, ``vmap`` included), like Newton.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
from jax import lax

from .._status import Status
from ._base import RUNNING, Step
from ._newton import NewtonProposal, SecondOrder, jacobi_scale, newton_convergence, pick_step, scaled_eigen

SUCCESS = int(Status.SUCCESS)
SECULAR_ITERATIONS = 12  # Newton steps on the secular equation (converges in ~3-6)


class Point(NamedTuple):
    x: Any
    f: Any
    g: Any
    hess: Any


class TrustState(NamedTuple):
    hess: Any
    radius: Any  # trust radius in the scaled coordinates (starts at first_radius; 1 in the second pass)
    scale: Any  # Moré's scaling: the largest sqrt|diag H| seen so far (second pass: fixed)
    second: Any  # True in the second pass (from the start again, scaling fixed at the start's)
    start: Point  # the start, for the second pass
    first: Point  # where the first pass stopped (its end is kept if it is the better one)


def _repeat(xp, n, body, val, skip=False):
    """``val = body(val)`` n times: a ``fori_loop`` when compiled (small program); on
    the host a Python loop that stops once ``val`` is fixed, or at once if ``skip``."""
    if xp is np:
        for _ in range(0 if skip else n):
            new = body(val)
            if new == val:
                break
            val = new
        return val
    return lax.fori_loop(0, n, lambda _, v: body(v), val)


def trust_subproblem(xp, w, gv, radius):
    """The exact minimiser of ``gv'q + q' diag(w) q / 2`` over ``|q| <= radius`` (the
    eigenbasis of the scaled Hessian; ``w`` ascending, any signs). Moré & Sorensen
    (1983): ``q = -gv / (w + lam)`` with ``lam >= max(0, -w_min)`` solving the secular
    equation ``1/|q(lam)| = 1/radius`` by Newton's method (monotone from the left, where
    it is nearly linear); in the hard case (``gv`` orthogonal to the lowest eigenvector,
    so ``|q|`` stays inside the ball) the step is completed along that eigenvector: the
    direction of negative curvature is used, not only flipped. Returns ``(q, lam)``."""
    eps = xp.finfo(w.dtype).eps
    scale = xp.maximum(xp.max(xp.abs(w), initial=0.0), 1.0)
    lam_lo = xp.maximum(-w[0], 0.0)
    shift = w + lam_lo  # >= 0, exactly 0 for the lowest eigenvalue when it is negative
    # The iteration runs on mu = lam - lam_lo: near the pole w + lam keeps full precision.

    def q_of(mu):
        d = shift + mu
        return xp.where(d > 0, -gv / xp.where(d > 0, d, 1.0), 0.0)

    pd = w[0] > 1e4 * eps * scale
    q0 = q_of(xp.zeros((), w.dtype))
    interior = pd & (xp.linalg.norm(q0) <= radius)
    mu_start = 1e-10 * scale
    q_in = q_of(mu_start)
    reach = xp.linalg.norm(q_in) > radius  # the easy case: |q| = radius has a root

    def secular_newton(mu):
        d = shift + mu
        q = q_of(mu)
        qn = xp.linalg.norm(q)
        dq = xp.sum(xp.where(d > 0, q**2 / xp.where(d > 0, d, 1.0), 0.0))  # -d|q|^2/dlam / 2
        step = (qn**2 / xp.where(dq > 0, dq, 1.0)) * (qn / radius - 1.0)
        return xp.where((qn > 0) & (dq > 0), mu + step, mu)

    mu = _repeat(xp, SECULAR_ITERATIONS, secular_newton, mu_start, skip=interior | ~reach)
    # Hard case: lam = -w_min, the rest of the ball along the lowest eigenvector (signed
    # so that the linear term does not grow). Only along clearly negative curvature: a
    # flat direction (an unidentified parameter) is not worth the whole radius.
    rest = xp.sqrt(xp.maximum(radius**2 - xp.sum(q_in[1:] ** 2), 0.0))
    sign = xp.where(gv[0] > 0, -1.0, 1.0)
    q_hard = xp.concatenate([(sign * rest)[None], q_in[1:]])
    q_hard = xp.where(w[0] < -1e4 * eps * scale, q_hard, q_in)
    lam = xp.where(interior, 0.0, lam_lo + xp.where(reach, mu, 0.0))
    q = xp.where(interior, q0, xp.where(reach, q_of(mu), q_hard))
    return q, lam


def trust_proposal(xp, x, g, hess, radius, scale, tol):
    """The trust-region step at ``x`` and the convergence tests (Newton's). Returns the
    proposal and the step's length in the scaled coordinates."""
    e = scaled_eigen(xp, g, hess, scale)
    c = newton_convergence(xp, x, e, tol)
    q, _ = trust_subproblem(xp, e.w, e.gv, radius)
    # Unlike Newton, do not stop at a flat saddle: follow its negative curvature.
    eps = xp.finfo(x.dtype).eps
    saddle = e.w[0] < -1e4 * eps * xp.max(xp.abs(e.w), initial=0.0)
    negligible = c.negligible & ~saddle
    p = xp.where(negligible, c.p_newton, (e.v @ q) / e.s)
    predicted = -(e.gv @ q + 0.5 * xp.sum(e.w * q**2))
    # Stationary but no strict maximum: a flat (or negative) direction is left.
    flat = ~(e.w[0] > 1e4 * eps * xp.max(xp.abs(e.w), initial=0.0))
    return NewtonProposal(p, predicted, negligible, c.within_noise), xp.linalg.norm(q), flat


def first_radius(xp, g, hess, scale):
    """The first trust radius: the full Newton step where ``-loglik``'s Hessian is
    positive definite (a well-behaved fit then takes Newton's steps), but at least 1;
    else 1. (Newton's first step with the eigenvalues taken by absolute value, as
    ``"newton"`` takes it, loses NIST's MGH09 from start 1.)"""
    e = scaled_eigen(xp, g, hess, scale)
    pd = e.w[0] > 1e4 * xp.finfo(g.dtype).eps * xp.max(xp.abs(e.w), initial=0.0)
    newton = xp.linalg.norm(e.gv / xp.where(pd, e.w, 1.0))
    return xp.where(pd & xp.isfinite(newton), xp.maximum(newton, 1.0), 1.0)


@dataclasses.dataclass(frozen=True)
class TrustRegion(SecondOrder):
    """Trust-region Newton with the exact subproblem (Moré-Sorensen), for hard starts.

    Each step minimises the quadratic model of ``-loglik`` (exact autodiff gradient and
    Hessian, its true eigenvalues: negative curvature is followed, not flipped) inside a
    ball of radius ``Delta`` in the coordinates scaled by ``sqrt|diag H|`` (so the
    region is an ellipsoid matched to the parameters' scales). ``Delta`` starts at the
    full Newton step where the Hessian of ``-loglik`` is positive definite, but at
    least 1, else at 1 (a step the model says changes the
    log-likelihood by about one unit per parameter), shrinks to a quarter of the step
    after a poor or rejected step and doubles after a good step on its boundary. A step
    is accepted only if the log-likelihood is finite and rises by at least ``accept``
    times the predicted gain: a NaN/inf or lower value is never accepted. Convergence
    and statuses are Newton's (decrement ``g'|H|^-1 g <= tol`` or a Newton step below
    1e-6 standard errors; then the exact Newton step is taken).

    If it converges to a stationary point that is no strict maximum (a flat or
    negative direction left: e.g. two exponential rates merged), it runs a second
    pass from the start with the scaling fixed at the start's ``sqrt|diag H|`` (the
    running maximum can steer into such a point) and returns the better of the two
    ends; ``maxiter`` counts both passes (default 3000: curved valleys can take
    2000 steps).

    Slower per step than ``"newton"`` (a secular-equation solve on top of the
    eigen-decomposition) and not the default; it reaches the maximum from some starts
    where Newton stops and flags (``NOT_MAXIMUM``, ``MAX_ITER``), e.g. NIST's MGH09,
    MGH17, Eckerle4, Bennett5 and Lanczos1-3, and it leaves a saddle point, where the
    gradient is zero and Newton cannot move (``docs/local_optima.md``).

    Examples:
        >>> import jax.numpy as jnp, mlejax as mj
        >>> ll = lambda p, x: -jnp.sum((p["a"] ** 2 - x) ** 2)  # a saddle at a = 0
        >>> res = mj.fit(ll, {"a": 0.0}, jnp.array([1.0, 2.0, 3.0]), method="trust-region")
        >>> round(abs(float(res.params["a"])), 6), res.method, bool(res.converged)
        (1.414214, 'trust-region', True)
    """

    accept: float = 1e-4

    name = "trust-region"
    default_maxiter = 3000

    def start(self, xp, x, d, tol):
        f, g, h = d
        start = Point(x, f, g, h)
        scale = jacobi_scale(xp, h)
        state = TrustState(h, first_radius(xp, g, h, scale), scale, xp.zeros((), bool), start, start)
        return Step(x, f, g, state, RUNNING)

    def propose(self, obj, x, f, g, state, tol):
        prop, qn, flat = trust_proposal(obj.xp, x, g, state.hess, state.radius, state.scale, tol)
        return x + prop.p, (prop, qn, flat)

    def update(self, xp, x, f, g, state, tol, plan, x_new, d):
        prop, qn, flat = plan
        radius = state.radius
        t = self.trial(xp, x, f, g, prop, x_new, d)
        good = t.ok & (t.rho > 0.75) & (qn >= 0.99 * radius)
        poor = ~t.ok | (t.rho < 0.25)
        qn = xp.where(xp.isfinite(qn), qn, radius)  # a NaN step (NaN Hessian) shrinks it too
        radius = xp.where(poor, 0.25 * xp.minimum(radius, qn), xp.where(good, 2.0 * radius, radius))
        # Out of step lengths: the step is lost in rounding, or the radius collapsed.
        stalled = ~t.ok & ((t.rel_step < xp.finfo(x.dtype).eps) | (radius < 1e-30))
        code, x, f, g, h = self.finish(xp, x, f, g, state.hess, t, stalled, prop)
        grow = t.ok & ~state.second
        scale = xp.where(grow, xp.maximum(state.scale, jacobi_scale(xp, h)), state.scale)
        return self.second_pass(xp, Step(x, f, g, state._replace(hess=h, radius=radius, scale=scale), code), flat)

    def second_pass(self, xp, st: Step, flat) -> Step:
        """Where the first pass converged to a stationary point that is no strict maximum
        (a flat direction: e.g. two exponential rates merged, the data then identify only
        the sum of their amplitudes), run again from the start with the scaling fixed at
        the start's: the running maximum of the first pass can steer into such a point.
        When the second pass stops, the first pass's end is returned instead if its
        log-likelihood is higher."""
        s = st.state
        done = (st.code == SUCCESS) & flat
        restart = ~s.second & done
        end = Point(st.x, st.f, st.g, s.hess)
        keep_first = s.second & (st.code != RUNNING) & (s.first.f < st.f)
        point = Point(*pick_step(xp, restart, s.start, pick_step(xp, keep_first, s.first, end)))
        first = Point(*pick_step(xp, restart, end, s.first))
        code = xp.where(restart, RUNNING, xp.where(keep_first, SUCCESS, st.code))
        state = TrustState(point.hess, xp.where(restart, 1.0, s.radius),
                           xp.where(restart, jacobi_scale(xp, s.start.hess), s.scale),
                           s.second | restart, s.start, first)
        return Step(point.x, point.f, point.g, state, code)
