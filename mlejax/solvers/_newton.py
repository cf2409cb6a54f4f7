"""Newton's method with the exact Hessian, made safe far from the optimum.

Written once against the array namespace ``obj.xp``: it runs on the host (numpy)
for a single fit and inside the compiled loop (``jax.numpy``) everywhere else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from .._linalg import eigh
from .._status import Status
from ._base import RUNNING, ProposeAccept, Step, code_for_rejected, finite, flat_but_better


class NewtonState(NamedTuple):
    hess: Any
    lam: Any
    nu: Any


def nielsen_update(xp, ok, rho, lam, nu):
    """Nielsen's (1999) damping update: shrink after good steps, grow after poor or
    rejected ones. Returns ``(lam, nu)``. Shared by Newton and Levenberg-Marquardt."""
    factor = xp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
    lam_ok = xp.where(rho < 0.25, xp.maximum(lam, 1e-3), lam) * factor
    lam_ok = xp.where(lam_ok > 1e-8, lam_ok, 0.0)
    return xp.where(ok, lam_ok, xp.maximum(lam * nu, 1e-3)), xp.where(ok, 2.0, 2.0 * nu)


class NewtonProposal(NamedTuple):
    p: Any  # the step to try
    predicted: Any  # the decrease of f the (modified, damped) quadratic model predicts
    negligible: Any  # converged: take the exact Newton step and stop
    within_noise: Any  # converged if the step is rejected (noise floor)


class ScaledEigen(NamedTuple):
    s: Any  # the Jacobi scaling sqrt|diag H| (1 where the diagonal is 0)
    w: Any  # eigenvalues (ascending, signed) of the scaled Hessian H / (s s')
    v: Any  # its eigenvectors (columns)
    gv: Any  # the scaled gradient g / s in that eigenbasis


def jacobi_scale(xp, hess):
    """``sqrt|diag H|``, 1 where the diagonal is 0."""
    dg = xp.abs(xp.diag(hess))
    return xp.where(dg > 0, xp.sqrt(dg), 1.0)


def scaled_eigen(xp, g, hess, s=None) -> ScaledEigen:
    """The eigen-decomposition of the scaled Hessian ``H / (s s')`` (Jacobi scaling by
    default): scaling makes eigenvalue floors, damping and trust radii unit-free."""
    s = jacobi_scale(xp, hess) if s is None else s
    w, v = eigh(hess / xp.outer(s, s), xp)
    return ScaledEigen(s, w, v, v.T @ (g / s))


class Convergence(NamedTuple):
    p_newton: Any  # the exact Newton step (0 where the Hessian is not positive definite)
    negligible: Any  # converged: take p_newton and stop
    within_noise: Any  # converged if the step is rejected (noise floor)
    w_mod: Any  # |eigenvalues| floored at eps * the largest


def newton_convergence(xp, x, e: ScaledEigen, tol) -> Convergence:
    """The convergence tests at ``x``, shared by Newton and the trust-region Newton."""
    eps = xp.finfo(x.dtype).eps
    s, w_signed, v, gv = e
    scale = xp.max(xp.abs(w_signed), initial=0.0)
    w_mod = xp.maximum(xp.abs(w_signed), scale * eps)
    # Converged when the Newton decrement g'|H|^-1 g (twice the gain still available,
    # in log-likelihood units: unchanged by adding a constant to the log-likelihood
    # or rescaling parameters) is below tol, or the exact Newton step is negligible:
    # at most 1e-6 standard errors in every coordinate. Unlike a gradient test these
    # also hold at the optimum of a noisy surface (least squares, where residuals
    # carry rounding of eps * |y|).
    safe = xp.where(w_mod > 0, w_mod, 1.0)
    decrement = xp.sum(xp.where(w_mod > 0, gv**2 / safe, xp.where(gv == 0, 0.0, xp.inf)))
    pd = xp.all(w_signed > 1e4 * eps * scale)
    w_pd = xp.where(pd, w_signed, 1.0)
    p_newton = -(v @ (gv / w_pd)) / s
    se = xp.sqrt((v**2) @ (1.0 / w_pd)) / s
    step_size = xp.abs(p_newton) / xp.maximum(se, 1e-4 * xp.abs(x))
    small = decrement <= tol
    negligible = (pd & (small | xp.all(step_size <= 1e-6))) | (~pd & small)
    # At the noise floor of a badly scaled surface the step cannot shrink below
    # ~1e-5 standard errors: a rejected step that small also means converged.
    within_noise = pd & xp.all(step_size <= 1e-4)
    # At a stationary point that is no maximum, stay (the information analysis flags it).
    return Convergence(xp.where(pd, p_newton, 0.0 * p_newton), negligible, within_noise, w_mod)


def newton_proposal(xp, x, g, hess, lam, tol) -> NewtonProposal:
    """The damped, eigenvalue-modified Newton step and the convergence tests at ``x``."""
    e = scaled_eigen(xp, g, hess)
    c = newton_convergence(xp, x, e, tol)
    q = -e.gv / (c.w_mod + lam)  # the step in the scaled eigenbasis
    p = xp.where(c.negligible, c.p_newton, (e.v @ q) / e.s)
    predicted = -(e.gv @ q + 0.5 * xp.sum(c.w_mod * q**2))
    return NewtonProposal(p, predicted, c.negligible, c.within_noise)


class Trial(NamedTuple):
    x: Any
    f: Any
    g: Any
    h: Any
    rho: Any  # gain ratio: actual decrease of f over the decrease the model predicts
    ok: Any  # accepted
    rel_step: Any  # the largest step relative to max(|x|, 1)


class SecondOrder(ProposeAccept):
    """What Newton and the trust-region Newton share: exact Hessians, host-capable, the
    Hessian kept in the state (``state.hess``), one evaluation (f, g, H) per step at the
    proposed point, and the acceptance test of a step."""

    accept: float  # the least gain ratio accepted (a dataclass field of each solver)
    default_tol = 1e-10
    host = True
    order = 2

    def hessian(self, state):
        return state.hess

    def trial(self, xp, x, f, g, prop: NewtonProposal, x_new, d) -> Trial:
        """The trial ``x_new = x + prop.p`` with its derivatives ``d``; accepted only if
        finite and the log-likelihood rises by at least ``accept`` times the predicted gain
        (a negligible step, which can only improve f up to rounding noise, is taken)."""
        f_new, g_new, h_new = d
        rho = (f - f_new) / xp.where(prop.predicted > 0, prop.predicted, xp.inf)
        ok = finite(xp, f_new, g_new, h_new) & (
            (rho > self.accept) | flat_but_better(xp, f, g, f_new, g_new) | prop.negligible
        )
        rel_step = xp.max(xp.abs(prop.p) / xp.maximum(xp.abs(x), 1.0), initial=0.0)
        return Trial(x_new, f_new, g_new, h_new, rho, ok, rel_step)

    def finish(self, xp, x, f, g, hess, t: Trial, stalled, prop):
        """The status and the point after a trial: ``(code, x, f, g, hess)``."""
        code = second_order_code(xp, t.ok, stalled, prop, t.f, t.g, t.h)
        return (code, *pick_step(xp, t.ok, (t.x, t.f, t.g, t.h), (x, f, g, hess)))


@dataclasses.dataclass(frozen=True)
class Newton(SecondOrder):
    """Newton's method with the exact Hessian, made safe far from the optimum.

    Each step solves ``(|H| + lam D) p = -g`` where ``|H|`` replaces the eigenvalues
    of the Jacobi-scaled Hessian by their absolute values (so the step always goes
    uphill in the log-likelihood, also at a saddle), ``D`` is the Hessian's
    diagonal (Marquardt's scaling) and ``lam`` is a Levenberg-Marquardt damping:
    zero near the optimum (pure Newton, quadratic convergence), adapted by
    Nielsen's rule from the ratio of the actual to the predicted gain. A step is
    accepted only if the log-likelihood is finite and rises by at least ``accept``
    times the predicted gain; a NaN/inf or lower value is never accepted.
    Converged when the Newton decrement ``g'|H|^-1 g`` is at most ``tol``
    (log-likelihood units) or the Newton step is below 1e-6 standard errors; the
    final exact Newton step is then taken.
    """

    accept: float = 1e-4

    name = "newton"
    default_maxiter = 200

    def start(self, xp, x, d, tol):
        zero = xp.zeros((), x.dtype)
        return Step(x, d.f, d.g, NewtonState(d.h, zero, zero + 2.0), RUNNING)

    def propose(self, obj, x, f, g, state, tol):
        prop = newton_proposal(obj.xp, x, g, state.hess, state.lam, tol)
        return x + prop.p, prop

    def update(self, xp, x, f, g, state, tol, prop, x_new, d):
        eps = xp.finfo(x.dtype).eps
        t = self.trial(xp, x, f, g, prop, x_new, d)
        lam, nu = nielsen_update(xp, t.ok, t.rho, state.lam, state.nu)
        stalled = ~t.ok & ((lam > 1e16) | (t.rel_step < eps))
        code, x, f, g, h = self.finish(xp, x, f, g, state.hess, t, stalled, prop)
        return Step(x, f, g, NewtonState(h, lam, nu), code)


def second_order_code(xp, ok, stalled, prop, f_new, g_new, h_new):
    """The status after a second-order step (Newton or trust region): RUNNING, SUCCESS
    when converged, or why it cannot go on once the step lengths ran out (``stalled``)."""
    code = xp.where(ok, RUNNING, code_for_rejected(xp, f_new))
    # Out of step lengths: NaN/inf trials mean the surface itself is broken there,
    # finite ones that the optimum is lost in rounding.
    given_up = xp.where(
        finite(xp, f_new, g_new, h_new), int(Status.PRECISION_LOSS), int(Status.NONFINITE)
    )
    code = xp.where(stalled & (code == RUNNING), given_up, code)
    return xp.where(prop.negligible | (prop.within_noise & ~ok), int(Status.SUCCESS), code)


def pick_step(xp, ok, new, old):
    """The trial point's values where the step is accepted, else the old ones."""
    return tuple(xp.where(ok, a, b) for a, b in zip(new, old))
