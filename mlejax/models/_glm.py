"""Regression models from a design matrix: linear, logistic, probit, Poisson,
negative binomial (NB2) and Gamma, as one generalised linear model (a response
distribution and a link), fitted by ``mj.fit``'s exact Newton."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special, stats

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
from .._result import nan_covariance
from .._status import ConvergenceWarning, HessianWarning, Status, warn_found
from ..dist import nb2_logpmf


class PerfectSeparationWarning(HessianWarning):
    """A binary regression whose outcomes a linear predictor separates (perfectly or
    quasi-perfectly): the MLE does not exist, some coefficients diverge. Causes: a
    covariate (or combination) that predicts the outcome exactly, often a rare
    category. Fix: drop or merge the category, or add a prior (``mj.glm(...,
    log_prior=mj.priors.normal(...))``: a ridge penalty, whose MAP always exists)."""


@dataclasses.dataclass(frozen=True)
class Link:
    name: str
    inverse: Callable  # eta -> mu
    fn: Callable  # mu -> eta


LINKS = {
    "identity": Link("identity", lambda e: e, lambda m: m),
    "log": Link("log", jnp.exp, jnp.log),
    "logit": Link("logit", jax.nn.sigmoid, lambda m: jnp.log(m) - jnp.log1p(-m)),
    "probit": Link("probit", special.ndtr, special.ndtri),
    "inverse": Link("inverse", lambda e: 1.0 / e, lambda m: 1.0 / m),
}


@dataclasses.dataclass(frozen=True)
class Response:
    """A response distribution given its mean: log-density, support, nuisance parameter."""

    name: str
    default_link: str
    support: str  # "real" | "unit" | "nonneg" | "positive"
    nuisance: str | None = None

    SUPPORT: ClassVar[dict] = {
        "real": (lambda y: True, "real numbers"),
        "unit": (lambda y: np.all((y >= 0) & (y <= 1)), "values in the unit interval [0, 1] (0/1 outcomes or proportions)"),
        "nonneg": (lambda y: np.all(y >= 0), "non-negative counts"),
        "positive": (lambda y: np.all(y > 0), "positive values (y > 0)"),
    }

    def logpdf(self, y, eta, link, nu):
        if self.name == "bernoulli":
            # log P(y=1) and log P(y=0) from eta directly: stable in the tails.
            if link.name == "logit":
                lp, lq = jax.nn.log_sigmoid(eta), jax.nn.log_sigmoid(-eta)
            elif link.name == "probit":
                lp, lq = special.log_ndtr(eta), special.log_ndtr(-eta)
            else:
                mu = link.inverse(eta)
                lp, lq = jnp.log(mu), jnp.log1p(-mu)
            return jnp.where(y > 0, y * lp, 0.0) + jnp.where(y < 1, (1 - y) * lq, 0.0)
        mu = link.inverse(eta)
        if self.name == "normal":
            return stats.norm.logpdf(y, mu, nu)
        if self.name == "poisson":
            return special.xlogy(y, mu) - mu - special.gammaln(y + 1.0)
        if self.name == "negbin":
            return nb2_logpmf(y, mu, nu)
        if self.name == "gamma":  # shape nu, mean mu: rate nu / mu
            return nu * jnp.log(nu / mu) - special.gammaln(nu) + (nu - 1) * jnp.log(y) - nu * y / mu
        raise AssertionError(self.name)

    def nuisance_start(self, y, mu, w):
        r = y - mu
        mean = lambda a: np.sum(w * a) / np.sum(w)  # noqa: E731
        if self.name == "normal":
            return math.sqrt(max(mean(r**2), 1e-300))
        if self.name == "negbin":
            return max(mean((r**2 - mu) / mu**2), 1e-2)
        if self.name == "gamma":
            return 1.0 / max(mean(r**2 / mu**2), 1e-8)
        return None


MODELS = {
    "linear": (Response("normal", "identity", "real", "sigma"), "identity"),
    "logit": (Response("bernoulli", "logit", "unit"), "logit"),
    "binomial": (Response("bernoulli", "logit", "unit"), "logit"),  # with trials=: k of n
    "probit": (Response("bernoulli", "probit", "unit"), "probit"),
    "poisson": (Response("poisson", "log", "nonneg"), "log"),
    "negbin": (Response("negbin", "log", "nonneg", "alpha"), "log"),
    "gamma": (Response("gamma", "inverse", "positive", "shape"), "inverse"),
}


@cached
def glm_loglik(response: Response, link: Link):
    """The (weighted) log-likelihood of one model: one function object per model, so
    refits reuse the compiled fit. ``data = (y, X, offset, w)``."""

    def loglik(params, data):
        y, x, offset, w = data
        eta = x @ params["beta"] + offset
        nu = params.get(response.nuisance) if response.nuisance else None
        lp = response.logpdf(y, eta, link, nu)
        return jnp.sum(jnp.where(w > 0, w * lp, 0.0))

    return loglik


def _validate(model, y, x, offset, weights, link):
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not known; use one of {tuple(MODELS)}.")
    response, default = MODELS[model]
    link = default if link is None else link
    if link not in LINKS:
        raise ValueError(f"link={link!r} is not known; use one of {tuple(LINKS)}.")
    if response.name == "bernoulli" and link not in ("logit", "probit"):
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
    if x.shape[0] < x.shape[1]:
        raise ValueError(
            f"X has {x.shape[0]} rows and {x.shape[1]} columns: more coefficients than "
            "observations, so they are not identified. Drop columns of X (or add a prior with "
            "log_prior= for a penalised fit)."
        )
    ok, what = Response.SUPPORT[response.support]
    if not ok(y):
        raise ValueError(f"y is outside the support of the {model} model: it needs {what}.")
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
    # all outcomes equal (all 0/1, all zero counts): link(mu0) is infinite; start inside
    # the support, and the fit then reports the supremum at infinity (DIVERGING)
    safe = (mu0 + 0.5) / 2 if response.support == "unit" else mu0 + 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        eta0 = np.asarray(link.fn(jnp.asarray(mu0)))
    eta0 = np.where(np.isfinite(eta0), eta0, np.asarray(link.fn(jnp.asarray(safe)))) - offset
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
        mu = np.where(np.isfinite(mu) & (mu > 0), mu, ybar) if response.name != "normal" else mu
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


def _at_infinity(res, response, link, y, x, offset, w):
    """Why the supremum of a count or continuous GLM is at infinity, in words, or None:
    zero counts fitted by a mean running to 0, or responses fitted exactly (zero
    residual variance: the shape of a Gamma model runs to infinity)."""
    mu = np.asarray(link.inverse(jnp.asarray(x @ np.asarray(res.params["beta"]) + offset)))
    if response.name in ("poisson", "negbin"):
        k = int(np.sum((y == 0) & (w > 0) & (mu < 1e-9 * max(float(np.max(y)), 1.0))))
        if k:
            return (f"{k} of {len(y)} zero counts are fitted by a mean running to 0 (e.g. all "
                    "counts zero, or a covariate that is non-zero only where the counts are 0): "
                    "coefficients diverge to -inf, so no finite MLE exists. Drop or merge that "
                    "covariate/category, or add a prior (log_prior)")
    if response.name == "gamma" and np.all(np.abs(y - mu)[w > 0] <= 1e-7 * np.abs(y)[w > 0]):
        return ("the model fits every response exactly (zero residual variance, e.g. all y "
                "equal): the Gamma shape runs to infinity, so no finite MLE exists. Check y, or "
                "use a model without a dispersion parameter")
    return None


def _binomial(y, trials, weights):
    """Successes out of ``trials`` as proportions with weights ``trials * weights``, and
    the binomial constant ``sum w log C(n, k)`` of the full log-likelihood."""
    k = check_finite_array("y", y).astype(float)
    n = np.broadcast_to(check_finite_array("trials", trials).astype(float), k.shape)
    if np.any(n < 1) or np.any(n != np.round(n)):
        raise ValueError("trials must be positive integers (the number of trials of each row).")
    if np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)):
        raise ValueError("y must be the number of successes: integers between 0 and trials.")
    w = np.ones(k.shape) if weights is None else np.asarray(weights, float)
    const = float(np.sum(w * np.asarray(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))))
    return k / n, n * w, const


def glm(y, X, model="linear", *, link=None, offset=None, weights=None, cov="observed",
        method="newton", maxiter=None, tol=None, log_prior=None, trials=None):
    """Fit a regression model from a design matrix by maximum likelihood.

    Args:
        y: responses, shape ``(n,)``.
        X: design matrix ``(n, p)`` (add a column of ones for an intercept).
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
        trials: for ``model="binomial"``, the number of trials of each row (an array
            or one integer); ``y`` is then the number of successes. The
            log-likelihood is the full binomial one (with ``log C(n, k)``), as in R
            and statsmodels' GLM Binomial; ``extras["deviance"]`` is the residual
            deviance. ``nobs`` counts the rows (never rows of weight 0).
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
    """
    columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    const = 0.0
    if model == "binomial" or trials is not None:
        if model != "binomial" or trials is None:
            raise ValueError("trials= goes with model='binomial' (successes y out of trials).")
        y, weights, const = _binomial(y, trials, weights)
    response, lnk, y, x, off, w = _validate(model, y, X, offset, weights, link)
    init = _start(response, lnk, y, x, off, w)
    n = int(np.sum(w > 0))
    dtype = jnp.result_type(float)
    data = tuple(jnp.asarray(a, dtype) for a in (y, x, off, w))
    ll = glm_loglik(response, lnk)
    res = quiet_fit(fit, ll, init, data, cov=cov, method=method, maxiter=maxiter, tol=tol, nobs=n,
                    log_prior=log_prior)
    extras, notes = {}, []
    if model == "binomial":
        p = np.asarray(lnk.inverse(jnp.asarray(x @ np.asarray(res.params["beta"]) + off)))
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = w * (special.xlogy(y, y / p) + special.xlogy(1 - y, (1 - y) / (1 - p)))
        extras["deviance"] = jnp.asarray(2.0 * np.sum(np.asarray(dev)))
        res = dataclasses.replace(res, loglik=res.loglik + const)
    if columns is not None and len(columns) == x.shape[1]:
        res = dataclasses.replace(res, names=tuple(
            f"beta[{columns[int(nm[5:-1])]}]" if nm.startswith("beta[") else nm for nm in res.names))
    if response.name == "normal":
        rss = float(np.sum(w * (y - x @ np.asarray(res.params["beta"]) - off) ** 2))
        m = float(np.sum(w))
        p = x.shape[1]
        extras.update(
            sigma2_mle=jnp.asarray(rss / m),
            sigma2_unbiased=jnp.asarray(rss / (m - p)) if m > p else jnp.asarray(np.nan),
            stderr_unbiased=res.stderr["beta"] * math.sqrt(m / (m - p)) if m > p else res.stderr["beta"] * np.nan,
        )
    sep = None
    if response.name == "bernoulli" and log_prior is None:
        sep = _separation(res, lnk, y, x, off)
        extras.update(separation=None if sep is None else sep[0], n_separated=0 if sep is None else sep[1])
        if sep is not None:
            notes.append(
                f"{sep[0]} separation: {sep[1]} of {n} outcomes are predicted exactly by the linear "
                "predictor, so the MLE does not exist (coefficients diverge); the estimates and "
                "standard errors are meaningless. Drop/merge the separating covariate or add a prior"
            )
    elif log_prior is None:
        cause = _at_infinity(res, response, lnk, y, x, off, w)
        notes += [cause] if cause else []
    if notes:  # the supremum is at infinity: the same status whatever the cause
        b = res._spec.natural_flat(res.params)
        res = nan_covariance(res, status=Status.DIVERGING, null_vector=b / jnp.linalg.norm(b))
    out = to_model_result(res, extras, notes)
    if notes:
        warn_found([(PerfectSeparationWarning if sep else ConvergenceWarning, out.message)], dtype)
    else:
        warn_result(out, stacklevel=2)
    return out


__all__ = ["glm", "PerfectSeparationWarning"]
