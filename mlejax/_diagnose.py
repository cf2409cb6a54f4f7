"""Name the derivative that is not finite (FAULTS row 36).

When a fit stops because something became NaN/inf, the cause is often not the
log-likelihood's value but one of its derivatives: a finite log-likelihood with a
NaN gradient or Hessian (``norm.cdf(inf - eta)`` has a NaN derivative in JAX; so
does the untaken branch of a ``jnp.where``). Blaming the log-likelihood then sends
the user after the wrong fix. This module evaluates the value, the gradient and the
Hessian at the point where the fit stopped and says which is not finite, for which
parameters, and what usually causes it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._jit import model_jit
from ._observations import natural_loglik_of

_CAUSES = (
    "Usual causes: an infinite constant inside a function (e.g. cut-points -inf/+inf in "
    "norm.cdf(cut - eta), whose derivative is NaN there in JAX), the untaken branch of a "
    "jnp.where with a NaN/inf derivative, or sqrt/log/power at 0. Fix: replace infinite "
    "constants by large finite ones (or drop those terms), apply jnp.where to the inputs "
    "as well as the output (the 'double where' trick); constraints will not help"
)


@functools.partial(model_jit, model="loglik", static_argnames=("spec",))
def _finiteness(dyn, data, phi, *, loglik, spec):
    f = natural_loglik_of(loglik, spec, dyn)
    value, grad = jax.value_and_grad(f)(phi, data)
    hess = jax.hessian(f)(phi, data)
    return jnp.isfinite(value), jnp.isfinite(grad), jnp.all(jnp.isfinite(hess), axis=1)


def nonfinite_note(res, params=None) -> str | None:
    """Which derivative of the log-likelihood is not finite at ``params`` (default:
    the result's), for which parameters, and the usual cause; None if the value is
    not finite (then the log-likelihood itself is to blame) or all are finite."""
    if res.nparams == 0:
        return None
    params = res.params if params is None else params
    phi = res._spec.natural_flat(params)
    ok_v, ok_g, ok_h = (np.asarray(a) for a in _finiteness(res._dyn, res._data, phi, loglik=res._loglik,
                                                                 spec=res._spec))
    if not ok_v:
        return None
    names = np.asarray(res.names)
    if not ok_g.all():
        which = ", ".join(names[~ok_g])
        return (f"the log-likelihood is finite there, but its gradient is NaN/inf with respect to "
                f"{which}. {_CAUSES}")
    if not ok_h.all():
        which = ", ".join(names[~ok_h])
        return (f"the log-likelihood and its gradient are finite there, but its second "
                f"derivatives (the Hessian) are NaN/inf in the rows of {which}. {_CAUSES}")
    return None


_VALUE = (
    "the log-likelihood and its derivatives are finite at the last point, so a step beyond it "
    "made the log-likelihood itself NaN/inf: constrain the parameters (mj.Positive, "
    "mj.Bounded) or guard the log-likelihood against log(0)"
)


def collapse_note(res) -> str | None:
    """Which parameters ran to within 1e-8 of their start's distance from a lower bound
    (a scale shrinking to 0) before the fit broke: then the log-likelihood grows without
    bound there, the usual reason a finite point is followed by a NaN/inf one. None if
    no parameter did."""
    low = np.asarray(res._spec.bounds_flat(res._dyn, np)[0], float)
    end = np.asarray(res._spec.natural_flat(res.params), float)
    start = np.concatenate([np.ravel(np.asarray(v, float)) for v in res._dyn.values])
    if start.shape != end.shape:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        shrunk = np.isfinite(low) & (end - low > 0) & (end - low <= 1e-8 * (start - low))
    if not shrunk.any():
        return None
    which = ", ".join(f"{n} ({s:.3g} -> {e:.3g})" for n, s, e in zip(np.asarray(res.names)[shrunk], start[shrunk],
                                                                      end[shrunk]))
    return (f"{which} shrank towards its lower bound while the log-likelihood kept rising: it "
            "grows without bound there, e.g. a scale going to 0 on data the model fits exactly "
            "(simulated without noise) or a variance on a single point. The model is degenerate "
            "for these data: check the data, bound the parameter away from the limit "
            "(mj.Bounded) or add a prior (log_prior=)")


def with_nonfinite_diagnosis(res):
    """``res`` with the cause of a ``NONFINITE`` stop in its ``diagnosis``: the
    derivative that is not finite (:func:`nonfinite_note`), a parameter that collapsed
    onto its bound (:func:`collapse_note`), or the value itself."""
    note = nonfinite_note(res) or collapse_note(res) or _VALUE
    return dataclasses.replace(res, diagnosis=res.diagnosis + (note,))
