"""Result codes of a fit, their messages, and mlejax's warning classes.

A status is an integer array inside the result pytree (so it survives ``vmap``);
the message is derived from it on the host.
"""

from __future__ import annotations

import enum
import os
import sys
import warnings
import weakref

import numpy as np


class Status(enum.IntEnum):
    """Why a fit stopped. ``SUCCESS`` is the only code with ``converged=True``."""

    RUNNING = -1
    SUCCESS = 0
    MAX_ITER = 1
    PRECISION_LOSS = 2
    NONFINITE = 3
    UNBOUNDED = 4
    NOT_MAXIMUM = 5
    NOT_IDENTIFIED = 6
    NONFINITE_START = 7
    NONFINITE_DATA = 8
    DIVERGING = 9
    NOT_SMOOTH = 10


# The one table of messages: a status's text, or per kind of fit ("fit": mj.fit and
# fit_batch; "em": mj.em and em_batch) where the two differ.
MESSAGES = {
    Status.RUNNING: "still running (internal state; never returned)",
    Status.SUCCESS: {
        "fit": "converged: the Newton decrement (log-likelihood still to gain) is below tol (or "
        "the Newton step is below 1e-6 standard errors) and the observed information is positive "
        "definite (a strict local maximum)",
        "em": "converged: the log-likelihood changed by less than tol per observation",
        "free": "converged: the Newton decrement (log-likelihood still to gain) is below tol; the "
        "curvature there was not checked (no Hessian formed)",
    },
    Status.MAX_ITER: {
        "fit": "not converged: the iteration limit (maxiter) was reached. Raise maxiter, start "
        "closer to the optimum, or rescale the parameters",
        "em": "not converged: the iteration limit (maxiter) was reached. Raise maxiter, loosen tol, "
        "or try more initialisations (n_init)",
    },
    Status.PRECISION_LOSS: "not converged: no step improves the log-likelihood any more "
    "(precision loss) while the gradient is still above tol. The optimum may be on a "
    "numerically noisy or non-smooth surface; loosen tol or reparametrise",
    Status.NONFINITE: {
        "fit": "not converged: the log-likelihood or one of its derivatives became NaN/inf and no "
        "shorter step recovered",
        "em": "stopped: a component collapsed (its covariance or parameters became singular or "
        "non-finite, e.g. a Gaussian component on a single point); the last finite parameters "
        "are returned. Set reg_covar > 0 (e.g. the default 1e-6), use fewer components, or start "
        "from other parameters",
    },
    Status.UNBOUNDED: {
        "fit": "not converged: the log-likelihood grows without bound (+inf). The model "
        "is degenerate for these data (e.g. a variance shrinking to zero on one point)",
        "em": "stopped: a component collapsed onto a single point or a lower-dimensional subset "
        "(its variance shrank towards 0 relative to the data's), where the log-likelihood grows "
        "without bound; standard errors are NaN. Use fewer components, a prior or lower bound on "
        "the component scale (reg_covar > 0 for a Gaussian mixture), or remove duplicated points",
    },
    Status.NOT_MAXIMUM: "not a maximum: the gradient vanishes but the Hessian is not negative "
    "definite (a saddle point or a minimum). Start from another point",
    Status.NOT_IDENTIFIED: {
        "fit": "not identified: the gradient vanishes but the observed information "
        "is singular, so some combination of parameters is not determined by the data (flat "
        "likelihood). Fix or drop a parameter, or reparametrise",
        "em": "not identified: the data have fewer distinct points than components, so some "
        "components are empty or duplicated. Use fewer components",
    },
    Status.NONFINITE_START: "the log-likelihood or its gradient is NaN/inf at the starting "
    "values",
    Status.NONFINITE_DATA: "the data contain NaN or inf",
    Status.DIVERGING: "not converged: the gradient is small but the estimate drifts towards "
    "infinity (the log-likelihood keeps rising ever more slowly, e.g. perfect separation in "
    "a logistic model): no finite maximum exists. Standard errors are NaN. Constrain, "
    "penalise (log_prior) or reparametrise the model",
    Status.NOT_SMOOTH: "not converged: the log-likelihood is not smooth on the scale of its "
    "standard errors (the curvature at the estimate differs by more than a factor of 3 from "
    "the change of the exact gradient over one standard error), so the standard errors would "
    "describe numerical noise or a kink, not the likelihood; they are NaN. Causes: noise from "
    "simulation, quadrature or an inner optimisation, or kinks (abs, max, where). Fix: compute "
    "the log-likelihood more accurately or smoothly, or use conf_int(method='profile') or the "
    "bootstrap",
}


KINDS = ("fit", "em")


def message(status, kind: str = "fit") -> str:
    """The message of a status code for a kind of fit (``"fit"`` or ``"em"``)."""
    text = MESSAGES[Status(int(status))]
    if isinstance(text, dict):
        return text.get(kind, text["fit"])  # "free" (no Hessian): only its own SUCCESS text
    return text


class BatchStatus:
    """Per-fit statuses of a batch of results (a mixin for the batch result classes;
    ``_kind`` picks the messages: ``"fit"`` or ``"em"``)."""

    _kind = "fit"

    @property
    def n_converged(self) -> int:
        return int(np.sum(np.asarray(self.converged)))

    @property
    def message(self) -> tuple:
        """Per fit, its status in words (``res[i].message`` adds the flags)."""
        return tuple(message(s, self._kind) for s in np.asarray(self.status))

    def status_counts(self) -> dict:
        """``{status name: number of fits}``, most frequent first."""
        codes, counts = np.unique(np.asarray(self.status), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return {Status(int(codes[i])).name: int(counts[i]) for i in order}


class MLEJaxWarning(UserWarning):
    """Base class of mlejax's warnings."""


class ConvergenceWarning(MLEJaxWarning):
    """A fit stopped without converging; the result's ``status`` and ``message`` say why."""


class HessianWarning(MLEJaxWarning):
    """The observed information is not usable as is (not positive definite, singular,
    ill-conditioned, or a parameter at a bound); see the result's flags."""


class PrecisionWarning(MLEJaxWarning):
    """Standard errors computed in float32; enable x64 for inference."""


FLOAT32 = (
    "computed in float32, which is not enough for inference (it is the likely cause of "
    "precision loss, a singular or indefinite information matrix and NaN standard errors "
    "here); enable float64 with jax.config.update('jax_enable_x64', True) before creating "
    "arrays"
)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(text: str, category) -> None:
    """``warnings.warn`` pointing at the first frame outside mlejax (the user's line),
    however deep inside the library it is called."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(text, category, stacklevel=level)


def low_precision(dtype) -> bool:
    """float32 and below (float16, bfloat16): too coarse for standard errors."""
    dt = np.dtype(dtype)
    return bool(np.issubdtype(dt, np.floating) and dt.itemsize < 8)


def _precision_text(dtype) -> str:
    return FLOAT32.replace("float32", np.dtype(dtype).name, 1)


_LOW_OUTPUT = weakref.WeakKeyDictionary()  # loglik -> the low-precision dtype it returned when traced


def note_output_dtype(loglik, dtype) -> None:
    """Remember, when ``loglik`` is traced, that it returns a low-precision scalar (e.g.
    float16 cast from float64): the fit's own arrays are then float64, and the
    precision of its standard errors is the log-likelihood's (read by :func:`precision_of`)."""
    try:
        if low_precision(dtype):
            _LOW_OUTPUT[loglik] = np.dtype(dtype)
        else:
            _LOW_OUTPUT.pop(loglik, None)
    except TypeError:  # not weak-referenceable or not hashable: no note
        pass


def precision_of(loglik, dtype):
    """The dtype that limits a fit's precision: ``dtype`` (its results'), or the lower
    precision ``loglik`` returned when traced."""
    if low_precision(dtype):
        return dtype
    try:
        return _LOW_OUTPUT.get(loglik, dtype)
    except TypeError:
        return dtype


def warn_found(found, dtype) -> None:
    """Issue the warnings of a single fit: ``found`` lists ``(category, text)``. In
    float32 there is one :class:`PrecisionWarning` naming float32 first, then the rest."""
    if low_precision(dtype):
        rest = "".join(f" Also: {text}." for _, text in found)
        warn_at_caller(f"mlejax: {_precision_text(dtype)}.{rest}", PrecisionWarning)
        return
    for category, text in found:
        warn_at_caller(text if text.endswith(".") else text + ".", category)


def warn_if_float32(dtype, stacklevel: int = 0) -> None:
    """The one float32 guard: warn that standard errors need float64 (at the caller's
    line; ``stacklevel`` is kept for old callers and ignored)."""
    if low_precision(dtype):
        warn_at_caller(f"standard errors were {_precision_text(dtype)}.", PrecisionWarning)
