"""Regression models from a design matrix: linear, logistic, probit, Poisson,
negative binomial (NB2) and Gamma, as one generalised linear model (a response
distribution and a link), fitted by ``mj.fit``'s exact Newton."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special

from .. import dist
from .._constraints import Positive
from .._fit import fit
from .._modelfit import (
    cached,
    check_finite_array,
    check_weights,
    quiet_fit,
    to_model_result,
    warn_result,
)
from .._status import HessianWarning, Status
from ._formula import design


class PerfectSeparationWarning(HessianWarning):
    """A binary regression whose outcomes a linear predictor separates (perfectly or
    quasi-perfectly): the MLE does not exist, some coefficients diverge. Causes: a
    covariate (or combination) that predicts the outcome exactly, often a rare
    category. Fix: drop or merge the category, or add a prior (``mj.glm(...,
    log_prior=mj.priors.normal(...))``: a ridge penalty, whose MAP always exists)."""


def _log_probs(inverse):
    """``(log mu, log(1 - mu))`` of a probability link, through ``mu``."""
    return lambda e: (jnp.log(inverse(e)), jnp.log1p(-inverse(e)))


@dataclasses.dataclass(frozen=True)
class Link:
    name: str
    inverse: Callable  # eta -> mu
    fn: Callable  # mu -> eta
    log_probs: Callable = None  # eta -> (log mu, log(1 - mu)) for a probability mean

    def __post_init__(self):
        if self.log_probs is None:
            object.__setattr__(self, "log_probs", _log_probs(self.inverse))


LINKS = {
    "identity": Link("identity", lambda e: e, lambda m: m),
    "log": Link("log", jnp.exp, jnp.log),
    # stable in the tails: log P(y=1), log P(y=0) straight from eta
    "logit": Link("logit", jax.nn.sigmoid, lambda m: jnp.log(m) - jnp.log1p(-m),
                  lambda e: (jax.nn.log_sigmoid(e), jax.nn.log_sigmoid(-e))),
    "probit": Link("probit", special.ndtr, special.ndtri, lambda e: (special.log_ndtr(e), special.log_ndtr(-e))),
    "inverse": Link("inverse", lambda e: 1.0 / e, lambda m: 1.0 / m),
}

# model name -> (response family from mlejax.dist, default link). The family gives
# the log-density, the support, the nuisance parameter and its start.
MODELS = {
    "linear": (dist.Normal(), "identity"),
    "logit": (dist.Bernoulli(), "logit"),
    "probit": (dist.Bernoulli(), "probit"),
    "poisson": (dist.Poisson(), "log"),
    "negbin": (dist.NegativeBinomial(), "log"),
    "gamma": (dist.Gamma(), "inverse"),
}


@cached
def glm_loglik(response: dist.Family, link: Link):
    """The (weighted) log-likelihood of one model: one function object per model, so
    refits reuse the compiled fit. ``data = (y, X, offset, w)``."""

    def loglik(params, data):
        y, x, offset, w = data
        eta = x @ params["beta"] + offset
        nu = params.get(response.nuisance) if response.nuisance else None
        lp = response.response_logpdf(y, eta, link, nu)
        return jnp.sum(jnp.where(w > 0, w * lp, 0.0))

    return loglik


def _validate(model, y, x, offset, weights, link):
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not known; use one of {tuple(MODELS)}.")
    response, default = MODELS[model]
    link = default if link is None else link
    if link not in LINKS:
        raise ValueError(f"link={link!r} is not known; use one of {tuple(LINKS)}.")
    if isinstance(response, dist.Bernoulli) and link not in ("logit", "probit"):
        raise ValueError(f"link={link!r}: model={model!r} sets its own link; use model='logit' or 'probit'.")
    y = check_finite_array("y", y).astype(float)
    x = check_finite_array("X", x).astype(float)
    if y.ndim != 1:
        raise ValueError(f"y has shape {y.shape}; give a 1-d array of responses.")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has shape {x.shape} but y has {y.shape[0]} observations; X must be (n, p) with "
            "one row per observation (add a column of ones for an intercept)."
        )
    response.check(y, "y", response.response_support, owner=f"the {model} model")
    n = y.shape[0]
    offset = np.zeros(n) if offset is None else check_finite_array("offset", offset).astype(float)
    if offset.shape != (n,):
        raise ValueError(f"offset has shape {offset.shape}; it needs one value per observation ({n},).")
    w = check_weights(weights, n)
    return response, LINKS[link], y, x, offset, (np.ones(n) if w is None else w)


def _start(response, link, y, x, offset, w):
    """The usual GLM start: the regression of link((y + mean y)/2) on X (exact OLS for
    the linear model), and a moment estimate of the nuisance parameter."""
    ybar = np.sum(w * y) / np.sum(w)
    mu0 = y if link.name == "identity" else (y + ybar) / 2
    eta0 = np.asarray(link.fn(jnp.asarray(mu0))) - offset
    sw = np.sqrt(w)
    q, r = np.linalg.qr(x * sw[:, None])  # least squares by QR: ~10x faster than SVD lstsq
    qty = q.T @ (eta0 * sw)
    diag = np.abs(np.diag(r))
    if np.all(diag > diag.max() * x.shape[1] * np.finfo(float).eps):
        beta = np.linalg.solve(r, qty)
    else:  # rank-deficient X: the minimum-norm start; the fit then flags it
        beta = np.linalg.lstsq(x * sw[:, None], eta0 * sw, rcond=None)[0]
    init = {"beta": beta}
    if response.nuisance:
        mu = np.asarray(link.inverse(jnp.asarray(x @ beta + offset)))
        if not isinstance(response, dist.Normal):
            mu = np.where(np.isfinite(mu) & (mu > 0), mu, ybar)
        init[response.nuisance] = Positive(response.nuisance_start(y, mu, w))
    return init


# An observation whose outcome the linear predictor gets right with margin above this
# (logit: fitted probability within 1e-9 of the outcome) is predicted "exactly": the
# coefficients are running away to infinity, as Newton stops only where the gradient
# (which decays like exp(-margin)) is negligible. R's glm warns at ~36 (10 eps).
_SEPARATION_MARGIN = {"logit": 20.0, "probit": 6.0}


def _separation(res, link, y, x, offset):
    eta = x @ np.asarray(res.params["beta"]) + offset
    binary = (y == 0) | (y == 1)
    margin = np.where(binary, (2 * y - 1) * eta, -np.inf)
    exact = margin > _SEPARATION_MARGIN[link.name]
    k = int(exact.sum())
    if k == 0:
        return None
    kind = "perfect" if k == len(y) else "quasi-complete"
    return kind, k


def glm(y, X=None, model="linear", *, data=None, link=None, offset=None, weights=None, cov="observed",
        method="newton", maxiter=None, tol=None, log_prior=None):
    """Fit a regression model from a design matrix (or a formula) by maximum likelihood.

    Args:
        y: responses, shape ``(n,)``; or a formula such as ``"y ~ x1 + np.log(x2) + C(g)"``
            with ``data=`` (needs the optional extra ``formula``: formulaic). Rows with
            missing values are dropped and the parameter ``names`` are the design
            matrix's columns (``Intercept``, ``x1``, ``C(g)[T.b]``), as statsmodels'.
        X: design matrix ``(n, p)`` (add a column of ones for an intercept); None with
            a formula.
        data: with a formula, a pandas DataFrame (or a dict of columns).
        model: ``"linear"`` (Normal; parameters ``beta``, ``sigma``), ``"logit"``,
            ``"probit"`` (0/1 outcomes or proportions), ``"poisson"``, ``"negbin"``
            (NB2: variance ``mu + alpha mu^2``; ``beta``, ``alpha``), ``"gamma"``
            (``beta``, ``shape``; the dispersion is ``1/shape``).
        link: override the model's link (``"identity"``, ``"log"``, ``"inverse"``) for
            the linear, Poisson, negative binomial and Gamma models. Defaults are the
            canonical links of R/statsmodels (Gamma: ``"inverse"``), NB2: ``"log"``.
        offset: added to the linear predictor (e.g. ``log(exposure)``).
        weights: frequency weights (the log-likelihood is ``sum w_i l_i``).
        cov, method, maxiter, tol: as in ``mj.fit``.
        log_prior: ``log_prior(params) -> scalar`` for a MAP fit, e.g.
            ``mj.priors.normal(1.0, on="beta")`` (ridge); see :mod:`mlejax.priors`.
            With a proper prior the MAP exists also under separation.

    Returns:
        A :class:`ModelResult`: ``params = {"beta": ..., <nuisance>: ...}`` with the
        inference of any fit. ``extras`` holds, for the linear model, ``sigma2_mle``
        (RSS/n, the MLE), ``sigma2_unbiased`` (RSS/(n-p), the textbook one) and
        ``stderr_unbiased`` (the OLS standard errors of ``beta``, which use it);
        for binary models ``separation`` (None, "perfect" or "quasi-complete") and
        ``n_separated``: with separation the MLE does not exist, the fit is reported
        as not identified (standard errors NaN) with a
        :class:`PerfectSeparationWarning`.

    Raises:
        ValueError naming ``y``/``X``/``offset``/``weights`` for a response outside the
        model's support (e.g. y not in [0, 1] for logit, negative counts), shapes that
        do not line up, or NaN/inf.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> X = np.column_stack([np.ones(6), [0.0, 1, 2, 3, 4, 5]])
        >>> res = mj.glm(np.array([1.0, 0, 2, 4, 3, 7]), X, "poisson")
        >>> res.names
        ('beta[0]', 'beta[1]')
    """
    if isinstance(y, str):
        return _formula_glm(y, X if data is None else data, model, link=link, offset=offset, weights=weights,
                            cov=cov, method=method, maxiter=maxiter, tol=tol, log_prior=log_prior)
    response, lnk, y, x, off, w = _validate(model, y, X, offset, weights, link)
    init = _start(response, lnk, y, x, off, w)
    n = y.shape[0]
    dtype = jnp.result_type(float)
    data = tuple(jnp.asarray(a, dtype) for a in (y, x, off, w))
    ll = glm_loglik(response, lnk)
    res = quiet_fit(fit, ll, init, data, cov=cov, method=method, maxiter=maxiter, tol=tol, nobs=n,
                    log_prior=log_prior)
    extras, notes = {}, []
    if isinstance(response, dist.Normal):
        rss = float(np.sum(w * (y - x @ np.asarray(res.params["beta"]) - off) ** 2))
        m = float(np.sum(w))
        p = x.shape[1]
        extras.update(
            sigma2_mle=jnp.asarray(rss / m),
            sigma2_unbiased=jnp.asarray(rss / (m - p)) if m > p else jnp.asarray(np.nan),
            stderr_unbiased=res.stderr["beta"] * math.sqrt(m / (m - p)) if m > p else res.stderr["beta"] * np.nan,
        )
    if isinstance(response, dist.Bernoulli) and log_prior is None:
        sep = _separation(res, lnk, y, x, off)
        extras.update(separation=None if sep is None else sep[0], n_separated=0 if sep is None else sep[1])
        if sep is not None:
            res = _not_identified(res)
            notes.append(
                f"{sep[0]} separation: {sep[1]} of {n} outcomes are predicted exactly by the linear "
                "predictor, so the MLE does not exist (coefficients diverge); the estimates and "
                "standard errors are meaningless. Drop/merge the separating covariate or add a prior"
            )
    out = to_model_result(res, extras, notes)
    if notes:
        warnings.warn(out.message, PerfectSeparationWarning, stacklevel=2)
    else:
        warn_result(out, stacklevel=2)
    return out


def _formula_glm(formula, data, model, **kw):
    """``glm`` from a formula: the design from :mod:`._formula`, the names from its columns."""
    y, x, names, rows = design(formula, data)
    for k in ("offset", "weights"):  # per-row arguments follow the rows kept
        if kw[k] is not None and len(rows) < len(np.asarray(kw[k])):
            kw[k] = np.asarray(kw[k])[rows]
    res = glm(y, x, model, **kw)
    return dataclasses.replace(res, names=names + res.names[len(names):])


def _not_identified(res):
    b = res._spec.natural_flat(res.params)
    nan = jnp.full_like(res.cov, jnp.nan)
    nan_dyn = res._dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in res._dyn.values))
    return dataclasses.replace(
        res,
        cov=nan,
        stderr=res._spec.from_natural_flat(jnp.full_like(b, jnp.nan), nan_dyn),
        status=jnp.asarray(int(Status.NOT_IDENTIFIED), jnp.int32),
        converged=jnp.asarray(False),
        not_identified=jnp.asarray(True),
        null_vector=b / jnp.linalg.norm(b),
    )


__all__ = ["glm", "PerfectSeparationWarning"]
