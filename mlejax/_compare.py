"""Comparing fits: likelihood-ratio test and Wald test of linear restrictions."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import chi2

from ._status import ConvergenceWarning


class TestResult(NamedTuple):
    statistic: float
    df: int
    pvalue: float


def _same_data(a, b) -> bool | None:
    """True/False when the two data pytrees have the same structure and shapes (equal
    values or not); None when their structures differ (not comparable)."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb or [np.shape(x) for x in la] != [np.shape(x) for x in lb]:
        return None
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(la, lb))


def _check_nested(full, restricted, nested: bool) -> None:
    """Refuse fits on different data and models not known to be nested."""
    if full.nobs != restricted.nobs:
        raise ValueError(
            f"the fits use different numbers of observations ({full.nobs} vs {restricted.nobs}); "
            "a likelihood-ratio test needs the same data."
        )
    if _same_data(full._data, restricted._data) is False:
        raise ValueError(
            "the two fits were made on different data (same shapes, different values); a "
            "likelihood-ratio test compares two models of the same data. Refit both on one dataset."
        )
    sf, sr = full._spec, restricted._spec
    same_model = full._loglik == restricted._loglik and sf is not None and sr is not None
    if same_model and sf.treedef == sr.treedef and sf.shapes == sr.shapes:
        extra = sorted(set(sr.names) - set(sf.names))
        if extra:
            raise ValueError(
                f"the restricted fit estimates {', '.join(extra)}, which the full fit holds "
                "fixed: it is not nested in the full model. Swap them or check the mj.Fixed markers."
            )
        return
    if not nested:
        raise ValueError(
            "mj.lrt cannot verify that the restricted model is nested in the full one: they "
            "use different log-likelihood functions or parameter trees (e.g. a Normal against "
            "a Laplace). For non-nested models compare AIC (res.aic, lower is better) instead; "
            "if the restricted model is the full one with some parameters fixed, fit both with "
            "the same loglik and mj.Fixed on the restricted parameters, or pass nested=True."
        )


def _warn_unconverged(**fits) -> None:
    """A test on fits that did not converge compares numbers that are not maxima."""
    bad = [name for name, f in fits.items()
           if not isinstance(f.converged, jax.core.Tracer) and not np.all(np.asarray(f.converged))]
    if bad:
        warnings.warn(
            f"the {' and '.join(bad)} fit{'s' if len(bad) > 1 else ''} did not converge (see "
            f"{bad[0]}.status / .message): the log-likelihood is not at its maximum, so the "
            "test statistic and p-value are unreliable. Refit (more maxiter, other starts) first.",
            ConvergenceWarning,
            stacklevel=3,
        )


def lrt(full, restricted, *, nested: bool = False) -> TestResult:
    """Likelihood-ratio test of a restricted fit nested in a full one.

    ``statistic = 2 (loglik_full - loglik_restricted)``, chi-squared with
    ``df = nparams_full - nparams_restricted`` under the null.

    Args:
        full, restricted: two fits of the same data. The test is valid only if the
            restricted model is the full one with some parameters held at fixed
            values: fit both with the same ``loglik`` and parameter tree, with
            ``mj.Fixed`` on the restricted parameters (``mj.Fixed(v, mask=...)`` for
            part of a vector), and mlejax checks the nesting itself.
        nested: with two different log-likelihood functions mlejax cannot check the
            nesting; pass ``nested=True`` to assert it.

    Returns:
        ``TestResult(statistic, df, pvalue)``.

    Raises:
        ValueError: the fits use different data, the models are not (known to be)
            nested (compare ``aic`` for non-nested models), the larger model is not
            first, or the full fit has a lower log-likelihood.

    Examples:
        >>> import jax.numpy as jnp, mlejax as mj
        >>> x = jnp.array([0.3, 1.2, -0.4, 0.8, 1.9, 0.1])
        >>> ll = lambda p, x: jnp.sum(-0.5 * ((x - p["mu"]) / p["s"]) ** 2 - jnp.log(p["s"]))
        >>> full = mj.fit(ll, {"mu": 0.0, "s": mj.Positive(1.0)}, x)
        >>> null = mj.fit(ll, {"mu": mj.Fixed(0.0), "s": mj.Positive(1.0)}, x)
        >>> mj.lrt(full, null).df
        1
    """
    df = full.nparams - restricted.nparams
    if df <= 0:
        raise ValueError(
            f"the full model has {full.nparams} free parameters and the restricted one "
            f"{restricted.nparams}; pass the larger model first: lrt(full, restricted)."
        )
    _check_nested(full, restricted, nested)
    _warn_unconverged(full=full, restricted=restricted)
    stat = 2.0 * (full.loglik - restricted.loglik)
    if np.any(np.asarray(stat) < -1e-6 * np.maximum(1.0, np.abs(np.asarray(full.loglik)))):
        raise ValueError(
            "the restricted fit has a higher log-likelihood than the full one: the models "
            "are not nested, or the full fit did not reach its maximum."
        )
    stat = jnp.maximum(stat, 0.0)
    return TestResult(stat, df, chi2.sf(stat, df))


def wald_test(res, r, q=None) -> TestResult:
    """Wald test of ``R theta = q`` (rows of ``R`` over the free parameters, in the
    order of ``res.names``): ``W = (R theta - q)' (R V R')^-1 (R theta - q)``."""
    r = jnp.atleast_2d(jnp.asarray(r, dtype=res.cov.dtype))
    if r.shape[1] != res.nparams:
        raise ValueError(
            f"R has {r.shape[1]} columns; it needs one per free parameter ({res.nparams}: "
            f"{', '.join(res.names)})."
        )
    q = jnp.zeros(r.shape[0], r.dtype) if q is None else jnp.atleast_1d(jnp.asarray(q, r.dtype))
    if q.shape != (r.shape[0],):
        raise ValueError(f"q has shape {q.shape}; it needs one value per row of R ({r.shape[0]},).")
    diff = r @ res._spec.natural_flat(res.params) - q
    stat = diff @ jnp.linalg.solve(r @ res.cov @ r.T, diff)
    df = r.shape[0]
    return TestResult(stat, df, chi2.sf(stat, df))
