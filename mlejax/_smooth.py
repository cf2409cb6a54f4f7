"""Does the curvature behind the standard errors hold over the region they describe?

Standard errors come from the Hessian at one point. A log-likelihood with numerical
noise (simulation, quadrature, a ``sin`` ripple) or kinks has a Hessian there that
says nothing about the shape of the likelihood one standard error away, so the
standard errors are plausible but wrong (FAULTS row 33). The check: for each free
parameter, the central finite difference of the exact gradient over +- one standard
error (on the optimiser's scale, so bounds are never crossed) against the autodiff
Hessian. For a smooth likelihood the two agree up to O(1/sqrt(n)); a ratio beyond
``RATIO`` either way means the likelihood is not smooth on the scale of its
standard errors.
"""

from __future__ import annotations

import contextvars
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._result import nan_covariance
from ._status import Status

RATIO = 3.0

# The ready-made models (glm, fit_dist, curve_fit) are smooth by construction; their
# likelihoods can be far from quadratic over one standard error (e.g. an inverse link),
# which this check would mistake for roughness. They switch it off while they fit.
MODEL_FIT = contextvars.ContextVar("mlejax_model_fit", default=False)


@functools.partial(jax.jit, static_argnames=("loglik", "spec"))
def _curvature_ratios(dyn, data, x, se, curv, *, loglik, spec):
    """Per free parameter (optimiser scale): finite-difference curvature over +- one
    standard error ``se`` divided by the autodiff curvature ``curv`` (NaN where not
    checkable). Only the gradient is compiled: the curvature is the fit's own."""
    f = lambda u: loglik(spec.to_natural(u, dyn), data)  # noqa: E731
    k = x.shape[0]
    steps = jnp.eye(k, dtype=x.dtype) * jnp.where(jnp.isfinite(se), se, 0.0)[:, None]
    grad = jax.vmap(jax.grad(f))
    fd = -jnp.diag(grad(x + steps) - grad(x - steps)) / (2.0 * jnp.where(jnp.isfinite(se), se, 1.0))
    ok = jnp.isfinite(se) & (curv > 0) & jnp.isfinite(fd)
    return jnp.where(ok, fd / jnp.where(ok, curv, 1.0), jnp.nan)


def _optimiser_scale_information(res):
    """The fit's observed information moved to the optimiser's scale by the chain rule
    (at a maximum the gradient term vanishes): ``J I J`` with ``J = dphi/du``."""
    x = np.asarray(res.x)
    d1, _ = res._spec.transform_derivatives(x, res._dyn, xp=np)
    d1 = np.asarray(d1, dtype=x.dtype)
    return d1[:, None] * np.asarray(res.information) * d1[None, :]


def rough_parameters(res) -> tuple:
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
    r = np.asarray(_curvature_ratios(res._dyn, res._data, jnp.asarray(res.x), jnp.asarray(se), jnp.asarray(curv),
                                     loglik=res._loglik, spec=res._spec))
    bad = np.isfinite(r) & ((r > RATIO) | (r < 1.0 / RATIO))
    return tuple(n for n, b in zip(res.names, bad) if b)


def flag_not_smooth(res):
    """``res`` with the smoothness check applied: where it fails, status
    ``NOT_SMOOTH`` (if it was ``SUCCESS``), the rough parameters named in
    ``rough_params``, and NaN covariance and standard errors."""
    rough = () if MODEL_FIT.get() else rough_parameters(res)
    if not rough:
        return res
    status = Status.NOT_SMOOTH if int(res.status) == Status.SUCCESS else res.status
    return nan_covariance(res, status=status, rough_params=rough)
