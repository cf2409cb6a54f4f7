"""Does the curvature behind the standard errors hold over the region they describe?

Standard errors come from the Hessian at one point. A log-likelihood with numerical
noise (simulation, quadrature, a ``sin`` ripple) or kinks has a Hessian there that
says nothing about the shape of the likelihood one standard error away, so the
standard errors are plausible but wrong (FAULTS row 33). The check: for each free
parameter, the central finite difference of the exact gradient over +- one standard
error (on the optimiser's scale, so bounds are never crossed) against the autodiff
curvature. For a smooth likelihood the two agree up to O(1/sqrt(n)); a ratio beyond
``RATIO`` either way means the likelihood is not smooth on the scale of its
standard errors. (Measured in variance units instead, the check would also catch
noise that moves the standard errors of strongly correlated parameters while
barely changing each curvature, but it then flags smooth, merely non-quadratic
likelihoods of small samples, e.g. a logistic regression on 32 rows: not done.)

Most fits are smooth, so one probe along all parameters at once (two gradients)
screens first, with a stricter threshold; the per-parameter check (2k gradients)
runs only when the probe finds something.
"""

from __future__ import annotations

import contextvars
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._jit import model_jit
from ._result import nan_covariance
from ._status import Status

RATIO = 3.0
# the one-probe screen is stricter than the check it gates: it only decides whether to run it
SCREEN = 0.2

# The ready-made models (glm, fit_dist, curve_fit) are smooth by construction; their
# likelihoods can be far from quadratic over one standard error (e.g. an inverse link),
# which this check would mistake for roughness. They switch it off while they fit.
MODEL_FIT = contextvars.ContextVar("mlejax_model_fit", default=False)


@functools.partial(model_jit, model="loglik", static_argnames=("spec",))
def _gradients_jit(dyn, data, points, *, loglik, spec):
    """The log-likelihood's gradients (optimiser scale) at the rows of ``points``."""
    return jax.vmap(jax.grad(lambda u: loglik(spec.to_natural(u, dyn), data)))(points)


def _curvature_along(res, steps, gradients):
    """Row ``r``: minus the central difference of the exact gradient (optimiser scale)
    over ``x +- steps[r]``, halved: for a quadratic log-likelihood exactly ``H steps[r]``
    with ``H`` the observed information. ``gradients`` is the fit's own compiled kernel
    where it has one (a host-driven fit: nothing new to compile); otherwise only the
    gradient is compiled."""
    x = np.asarray(res.x)
    points = np.concatenate([x + steps, x - steps])
    if gradients is None:
        g = np.asarray(_gradients_jit(res._dyn, res._data, jnp.asarray(points), loglik=res._loglik, spec=res._spec))
    else:
        g = np.asarray(gradients(points))
    m = len(steps)
    return -(g[:m] - g[m:]) / 2.0


def _screen(res, info, se, checkable, gradients) -> bool:
    """True when one probe along all checkable parameters at once (+-1 standard error
    each, alternating signs) departs from the quadratic model ``info @ step`` by more
    than ``SCREEN`` of the step's curvature scale in some parameter, so that the
    per-parameter check is worth its 2k gradients."""
    signs = np.where(np.arange(len(se)) % 2 == 0, 1.0, -1.0)
    step = np.where(checkable, se, 0.0) * signs
    along = _curvature_along(res, step[None, :], gradients)[0]
    with np.errstate(all="ignore"):
        off = np.abs(along - info @ step) / (np.abs(info) @ np.abs(step))
    return bool(np.any(checkable & (~np.isfinite(off) | (off > SCREEN))))


def _curvature_ratios(res, se, curv, checkable, gradients):
    """Per free parameter (optimiser scale): finite-difference curvature over +- one
    standard error ``se`` divided by the autodiff curvature ``curv`` (NaN where not
    checkable)."""
    safe = np.where(checkable, se, 0.0)
    along = _curvature_along(res, np.diag(safe), gradients)
    with np.errstate(all="ignore"):
        r = np.diag(along) / np.where(checkable, safe * curv, 1.0)
    return np.where(checkable, r, np.nan)


def _optimiser_scale_information(res):
    """The fit's observed information moved to the optimiser's scale by the chain rule
    (at a maximum the gradient term vanishes): ``J I J`` with ``J = dphi/du``."""
    x = np.asarray(res.x)
    d1, _ = res._spec.transform_derivatives(x, res._dyn, xp=np)
    d1 = np.asarray(d1, dtype=x.dtype)
    return d1[:, None] * np.asarray(res.information) * d1[None, :]


def rough_parameters(res, gradients=None) -> tuple:
    """Names of the free parameters whose curvature does not hold over +- one standard
    error (empty for a smooth likelihood or when the check does not apply)."""
    if (res._spec is None or res.cov is None or isinstance(res.loglik, jax.core.Tracer)
            or jnp.ndim(res.loglik) != 0):
        return ()
    var = np.diag(np.asarray(res.cov)) if res.nparams else np.zeros(0)
    if res.nparams == 0 or not np.all(np.isfinite(var) & (var > 0)):
        return ()
    info = _optimiser_scale_information(res)
    # at a bound the gradient does not vanish, so the chain rule above does not hold
    # there (and Wald standard errors are flagged anyway): those are not checked
    at_bound = np.broadcast_to(np.asarray(res.params_at_bound, bool), (info.shape[0],))
    curv = np.where(at_bound, np.nan, np.diag(info))
    with np.errstate(all="ignore"):
        var_u = np.diag(np.linalg.pinv(info)) if np.all(np.isfinite(info)) else np.full(len(curv), np.nan)
    se = np.where(var_u > 0, np.sqrt(np.abs(var_u)), np.nan)
    checkable = np.isfinite(se) & (curv > 0)
    if not checkable.any() or not _screen(res, np.where(np.isfinite(info), info, 0.0), se, checkable, gradients):
        return ()
    r = _curvature_ratios(res, se, curv, checkable, gradients)
    bad = np.isfinite(r) & ((r > RATIO) | (r < 1.0 / RATIO))
    return tuple(n for n, b in zip(res.names, bad) if b)


def flag_not_smooth(res, gradients=None):
    """``res`` with the smoothness check applied: where it fails, status
    ``NOT_SMOOTH`` (if it was ``SUCCESS``), the rough parameters named in
    ``rough_params``, and NaN covariance and standard errors."""
    rough = () if MODEL_FIT.get() else rough_parameters(res, gradients)
    if not rough:
        return res
    status = Status.NOT_SMOOTH if int(res.status) == Status.SUCCESS else res.status
    return nan_covariance(res, status=status, rough_params=rough)
