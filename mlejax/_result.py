"""``FitResult``: an immutable pytree holding a fit and its inference."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from ._status import Status, message as status_message


class DeltaResult(NamedTuple):
    """Estimate and standard error of ``fn(params)`` by the delta method."""

    estimate: Any
    stderr: Any
    cov: Any  # covariance of the flattened estimate


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The result of :func:`mlejax.fit`. An immutable pytree: ``jax.vmap`` over a fit
    returns one with a leading batch axis on every array.

    Attributes:
        params: the estimates, a pytree like ``init``, on the natural scale.
        stderr: standard errors, same pytree (NaN for fixed leaves and wherever the
            covariance cannot be trusted).
        cov: covariance (k x k) of the free parameters, in the order of ``names``.
        information: observed Fisher information, minus the Hessian of the
            log-likelihood at the estimate, natural scale, free parameters (k x k).
        names: flat names of the free parameters, e.g. ``"mu"``, ``"beta[2]"``.
        loglik: maximised log-likelihood. nobs: number of observations.
        converged: True only for status ``SUCCESS``. n_iter: iterations used.
        grad_norm: norm of the final gradient on the optimiser's scale.
        status: a :class:`mlejax.Status` code; ``message`` says it in words.
        hessian_not_negdef: the Hessian of the log-likelihood is not negative
            definite (or not finite) at the end. Causes: the fit stopped at a saddle
            point or a minimum; the maximum is on a boundary the optimiser cannot
            reach; the log-likelihood is not smooth there. Fix: start elsewhere,
            constrain the parameter, or check the model. Standard errors are NaN.
        not_identified: the information is singular: the combination
            ``null_vector`` of parameters is not determined by the data. Causes:
            redundant parameters (only ``a - b`` enters), collinear covariates,
            a flat likelihood, too few observations. Fix: fix or drop a parameter,
            reparametrise, or add data. Standard errors are NaN.
        ill_conditioned: the correlation-scaled information has a condition number
            (``condition_number``) above 1/sqrt(eps): standard errors are computed
            but are sensitive to rounding. Causes: nearly collinear parameters,
            badly scaled parameters. Fix: centre/scale covariates, reparametrise.
        params_at_bound: per free parameter, True if it is within half a standard
            error of a bound. Causes: the MLE is on the boundary of the parameter
            space (e.g. a variance component of zero). Wald standard errors and
            intervals are unreliable there; use ``conf_int(method="profile")``.
        x: the optimum on the optimiser's unconstrained scale (a flat vector).
    """

    params: Any
    stderr: Any
    cov: Any
    information: Any
    loglik: Any
    converged: Any
    n_iter: Any
    grad_norm: Any
    status: Any
    hessian_not_negdef: Any
    not_identified: Any
    ill_conditioned: Any
    condition_number: Any
    null_vector: Any
    params_at_bound: Any
    x: Any
    _dyn: Any = None
    _data: Any = None
    # static metadata
    names: tuple = ()
    nobs: Any = None
    method: str = "newton"
    cov_type: str = "observed"
    _spec: Any = None
    _loglik: Any = None

    # -- derived quantities ----------------------------------------------------------
    @property
    def nparams(self) -> int:
        return len(self.names)

    @property
    def aic(self):
        return 2.0 * self.nparams - 2.0 * self.loglik

    @property
    def aicc(self):
        n, k = self.nobs, self.nparams
        if n is None or n - k - 1 <= 0:
            return jnp.nan * self.loglik
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1)

    @property
    def bic(self):
        if not self.nobs:
            return jnp.nan * self.loglik
        return self.nparams * math.log(self.nobs) - 2.0 * self.loglik

    @property
    def at_bound(self):
        return jnp.any(self.params_at_bound, axis=-1)

    @property
    def message(self) -> str:
        """The status in words, with the flags that qualify it (single fits)."""
        msg = status_message(self.status)
        notes = self._flag_notes()
        return msg + ("" if not notes else "; " + "; ".join(notes))

    def _flag_notes(self) -> list[str]:
        notes = []
        if bool(self.hessian_not_negdef) and int(self.status) != Status.NOT_MAXIMUM:
            notes.append("the Hessian is not negative definite: standard errors are NaN")
        if bool(self.not_identified) and int(self.status) != Status.NOT_IDENTIFIED:
            notes.append("the observed information is singular: standard errors are NaN")
        if bool(self.not_identified):
            notes.append(f"the data do not determine the combination {self.null_combination()}")
        if bool(self.ill_conditioned):
            notes.append(
                f"the information is ill-conditioned (condition number "
                f"{float(self.condition_number):.3g}): standard errors are sensitive to rounding"
            )
        if bool(self.at_bound):
            at = [n for n, b in zip(self.names, np.asarray(self.params_at_bound)) if b]
            notes.append(
                f"{', '.join(at)} at or near a bound: Wald standard errors and intervals are "
                "unreliable there; use conf_int(method='profile')"
            )
        return notes

    def null_combination(self, tol: float = 0.05) -> str:
        """The parameter combination the data determine least, as text (e.g. ``0.71*a + 0.71*b``)."""
        v = np.asarray(self.null_vector)
        v = v * np.sign(v[np.argmax(np.abs(v))]) if v.size else v
        terms = [f"{c:+.3g}*{n}" for c, n in zip(v, self.names) if abs(c) > tol]
        return " ".join(terms).lstrip("+") if terms else "(none)"

    # -- inference methods -----------------------------------------------------------
    def _phi(self):
        return self._spec.natural_flat(self.params)

    def conf_int(self, level: float = 0.95, method: str = "wald"):
        """Confidence intervals, a pytree like ``params`` of ``(low, high)`` pairs.

        ``method="wald"``: estimate +- z * stderr (asymptotic normality).
        ``method="profile"``: inverts the likelihood-ratio test by re-maximising
        over the other parameters; respects constraints.
        Fixed leaves get ``(nan, nan)``.
        """
        _check_level(level)
        if method == "wald":
            z = ndtri(0.5 + level / 2.0)
            to_pair = lambda p, s: (p - z * s, p + z * s)  # noqa: E731
            return jax.tree_util.tree_map(to_pair, self.params, self.stderr)
        if method == "profile":
            from ._profile import profile_conf_int

            return profile_conf_int(self, level)
        raise ValueError(f"method={method!r}; use 'wald' or 'profile'.")

    def delta(self, fn) -> DeltaResult:
        """Estimate and standard error of ``fn(params)`` by the delta method.

        ``fn`` takes the params pytree (natural scale) and returns an array or
        pytree; its gradient comes from autodiff. By the invariance of the MLE the
        estimate of ``fn(theta)`` is ``fn(theta_hat)``.
        """
        spec, dyn = self._spec, self._dyn
        phi = self._phi()
        g = lambda p: jax.flatten_util.ravel_pytree(fn(spec.from_natural_flat(p, dyn)))[0]  # noqa: E731
        est_tree = fn(self.params)
        flat, unravel = jax.flatten_util.ravel_pytree(est_tree)
        jac = jax.jacobian(g)(phi).reshape(flat.shape[0], phi.shape[0])
        cov = jac @ self.cov @ jac.T
        se = jnp.sqrt(jnp.diag(cov))
        return DeltaResult(est_tree, unravel(se), cov)

    def wald_test(self, r, q=None):
        """Wald test of the linear restrictions ``R theta = q`` over the free parameters
        (in the order of ``names``). Returns statistic, df, p-value (chi-squared)."""
        from ._compare import wald_test

        return wald_test(self, r, q)

    def summary(self) -> str:
        from ._summary import summary_text

        return summary_text(self)

    def _repr_html_(self) -> str:
        from ._summary import summary_html

        return summary_html(self)

    def __str__(self) -> str:
        if _is_concrete(self.loglik) and jnp.ndim(self.loglik) == 0:
            return self.summary()
        return f"FitResult(names={self.names}, batched/traced)"

    __repr__ = __str__


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_level(level):
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level={level} must be strictly between 0 and 1 (e.g. 0.95).")


_META = ("names", "nobs", "method", "cov_type", "_spec", "_loglik")
jax.tree_util.register_dataclass(
    FitResult,
    data_fields=[f.name for f in dataclasses.fields(FitResult) if f.name not in _META],
    meta_fields=list(_META),
)
