"""What the ready-made models share: a :class:`ModelResult` (a ``FitResult`` with
model-specific extras), re-marking a pytree of estimates as a starting point, and
replacing the information matrix of a fit (expected information, a diagnosis)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._constraints import FIXED, FREE, INTERVAL, LOWER, UPPER, Bounded, Fixed
from ._inference import analyse_information, at_bound
from ._jit import jit
from ._result import META_FIELDS as _META, FitResult, nan_covariance
from ._smooth import MODEL_FIT
from ._status import ConvergenceWarning, MLEJaxWarning, Status, warn_found


@dataclasses.dataclass(frozen=True)
class ModelResult(FitResult):
    """A :class:`FitResult` from a ready-made model, with the model's own extras.

    Attributes (besides those of ``FitResult``):
        extras: a dict of model-specific estimates, e.g. ``sigma2_unbiased`` for the
            linear model, ``stderr_gn`` (Gauss-Newton standard errors) for
            :func:`curve_fit`, ``separation`` for binary regressions.
        notes: diagnoses in words that qualify ``message`` (e.g. separation).
    """

    extras: Any = None
    notes: tuple = ()

    @property
    def message(self) -> str:
        msg = super().message
        return msg + "".join(f"; {n}" for n in self.notes)


jax.tree_util.register_dataclass(
    ModelResult,
    data_fields=[f.name for f in dataclasses.fields(ModelResult) if f.name not in _META + ("notes",)],
    meta_fields=list(_META) + ["notes"],
)


def to_model_result(res: FitResult, extras=None, notes=()) -> ModelResult:
    fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(FitResult)}
    if isinstance(res, ModelResult):
        extras = {**(res.extras or {}), **(extras or {})}
        notes = res.notes + tuple(notes)
    return ModelResult(**fields, extras=extras if extras is not None else {}, notes=tuple(notes))


def remark(spec, dyn, params):
    """``params`` (natural scale) wrapped in the constraint markers of ``spec``: a
    starting point for ``mj.fit`` with the same parametrisation."""
    out = []
    masks = spec.masks or (None,) * len(spec.kinds)
    for kind, v, lo, hi, idx in zip(spec.kinds, spec.treedef.flatten_up_to(params), dyn.lows, dyn.highs, masks):
        if kind == FIXED:
            out.append(Fixed(v))
        elif idx is not None:  # partly held
            held = np.ones(np.size(v), bool)
            held[list(idx)] = False
            out.append(Fixed(v, mask=held.reshape(np.shape(v))))
        elif kind == FREE:
            out.append(v)
        else:
            low = lo if kind in (LOWER, INTERVAL) else -jnp.inf
            high = hi if kind in (UPPER, INTERVAL) else jnp.inf
            out.append(Bounded(low, high, v))
    return spec.unflatten_leaves(out)


def with_information(res: FitResult, info, *, converged_status=None) -> FitResult:
    """``res`` with its information replaced (e.g. by the expected information) and
    the covariance, standard errors and Hessian flags recomputed from it.

    ``converged_status``: the status to report when the new information is usable
    (default: keep the fit's status unless the information is bad).
    """
    spec, dyn = res._spec, res._dyn
    an = analyse_information(info)
    se_flat = jnp.where(jnp.diag(an.inverse) >= 0, jnp.sqrt(jnp.abs(jnp.diag(an.inverse))), jnp.nan)
    nan_dyn = dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in dyn.values))
    low, high = spec.bounds_flat(dyn)
    status = res.status if converged_status is None else jnp.asarray(int(converged_status), jnp.int32)
    status = jnp.where(an.not_negdef, int(Status.NOT_MAXIMUM), status)
    status = jnp.where(an.not_identified, int(Status.NOT_IDENTIFIED), status).astype(jnp.int32)
    return dataclasses.replace(
        res,
        information=info,
        cov=an.inverse,
        stderr=spec.from_natural_flat(se_flat, nan_dyn),
        status=status,
        converged=status == int(Status.SUCCESS),
        hessian_not_negdef=an.not_negdef,
        not_identified=an.not_identified,
        ill_conditioned=an.ill_conditioned,
        condition_number=an.condition_number,
        null_vector=an.null_vector,
        params_at_bound=at_bound(spec.natural_flat(res.params), se_flat, low, high),
    )


with_information_jit = jit(with_information, static_argnames=("converged_status",))


def quiet_fit(fit_fn, *args, **kwargs):
    """Run a fit whose warnings the caller re-issues after its own diagnosis."""
    token = MODEL_FIT.set(True)  # a ready-made model is smooth: no roughness check
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLEJaxWarning)
            return fit_fn(*args, **kwargs)
    finally:
        MODEL_FIT.reset(token)


def fits_exactly(rss, y, w) -> bool:
    """Is the weighted residual sum of squares ``rss`` of a fit to ``y`` zero up to the
    rounding of computing the fitted values (``rss <= (128 eps)^2 sum w y^2``)? Then the
    model reproduces every response: a Gaussian scale's MLE is 0 and the log-likelihood
    is unbounded. Scale-free: genuine noise, however small relative to ``y``, is far
    above this."""
    y, w = np.asarray(y, float), np.asarray(w, float)
    return bool(float(rss) <= (128 * np.finfo(float).eps) ** 2 * float(np.sum(np.where(w > 0, w * y * y, 0.0))))


def with_notes(res: FitResult, extras, notes, dtype, status=Status.DIVERGING, null_vector=None,
               warning=None) -> ModelResult:
    """The ready-made model's result. Where ``notes`` name why no finite MLE exists
    (separation, responses fitted exactly, ...): ``status`` (``DIVERGING`` by default)
    with NaN standard errors and one warning (``warning``, a :class:`ConvergenceWarning`
    by default) giving the message with the notes; else the warnings of the fit."""
    if notes:
        res = nan_covariance(res, status=status, null_vector=null_vector)
    out = to_model_result(res, extras, notes)
    if notes:
        warn_found([(warning or ConvergenceWarning, out.message)], dtype)
    else:
        warn_result(out, stacklevel=4)
    return out


def warn_result(res: FitResult, stacklevel: int = 3) -> None:
    """The warnings ``mj.fit`` gives for a single fit, for a result changed afterwards."""
    from ._fit import _raise_or_warn

    _raise_or_warn(res, res._data, (), stacklevel=stacklevel + 1)


def check_finite_array(name: str, a) -> np.ndarray:
    """A float array without NaN/inf, or a ValueError naming the argument."""
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} has dtype {arr.dtype}; give a numeric array.")
    arr = arr.astype(np.result_type(arr.dtype, np.float32)) if arr.dtype == np.bool_ else arr
    bad = ~np.isfinite(arr)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf values (first at index {idx if len(idx) > 1 else idx[0]}); "
            "remove or impute those observations."
        )
    return arr


def check_weights(weights, n: int, name: str = "weights"):
    """Non-negative finite frequency weights of length ``n`` (None: all ones)."""
    if weights is None:
        return None
    w = check_finite_array(name, weights)
    if w.shape != (n,):
        raise ValueError(f"{name} has shape {w.shape}; it needs one weight per observation ({n},).")
    if np.any(w < 0):
        raise ValueError(f"{name} has negative entries (e.g. {w[w < 0][0]}); weights must be >= 0.")
    if not np.any(w > 0):
        raise ValueError(f"{name} are all zero; at least one observation needs a positive weight.")
    return w


__all__ = ["ModelResult"]
