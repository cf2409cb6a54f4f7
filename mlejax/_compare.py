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


def lrt(full, restricted) -> TestResult:
    """Likelihood-ratio test of a restricted fit nested in a full one.

    ``statistic = 2 (loglik_full - loglik_restricted)``, chi-squared with
    ``df = nparams_full - nparams_restricted`` under the null. Fit the restricted
    model with ``mj.Fixed`` on the restricted parameters (same data).

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
        >>> def loglik(p, x):
        ...     return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))
        >>> x = np.random.default_rng(0).normal(0.5, 1.0, 100)
        >>> full = mj.fit(loglik, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
        >>> null = mj.fit(loglik, {"mu": mj.Fixed(0.0), "sigma": mj.Positive(1.0)}, x)
        >>> test = mj.lrt(full, null)
        >>> test.df, bool(test.pvalue < 0.01)
        (1, True)
    """
    df = full.nparams - restricted.nparams
    if df <= 0:
        raise ValueError(
            f"the full model has {full.nparams} free parameters and the restricted one "
            f"{restricted.nparams}; pass the larger model first: lrt(full, restricted)."
        )
    if full.nobs != restricted.nobs:
        raise ValueError(
            f"the fits use different numbers of observations ({full.nobs} vs {restricted.nobs}); "
            "a likelihood-ratio test needs the same data."
        )
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
