"""Regression models from a design matrix: linear, logistic, probit, Poisson,
negative binomial (NB2) and Gamma, as one generalised linear model (a response
distribution and a link), fitted by ``mj.fit``'s exact Newton."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special

from .. import dist
from .._constraints import Positive
from .._fit import fit, spans_devices
from .._jit import cached
from .._modelfit import (
    check_finite_array,
    check_weights,
    fits_exactly,
    quiet_fit,
    to_model_result,
    warn_result,
    with_notes,
)
from .._status import ConvergenceWarning, HessianWarning
from ..backends._shard import xp_of
from ..backends._sources import Mapped
from . import _multinomial as multinomial
from ._formula import design
from ._glm_sharded import check_design, refuse_sharded, sharded_start, sharded_validate
from ._xwx import structured_loglik


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
    "binomial": (dist.Bernoulli(), "logit"),  # with trials=: y successes out of trials
    "probit": (dist.Bernoulli(), "probit"),
    "poisson": (dist.Poisson(), "log"),
    "negbin": (dist.NegativeBinomial(), "log"),
    "gamma": (dist.Gamma(), "inverse"),
}


HESSIANS = ("auto", "xwx", "autodiff")
# hessian="auto" builds X'WX when n p^2 reaches this: below it the Hessian is cheap and
# autodiff's kernel compiles ~15% faster (the first call matters more there).
XWX_MIN_WORK = 2**26


@cached
def glm_loglik(response: dist.Family, link: Link, structured: bool = True):
    """The (weighted) log-likelihood of one model: one function object per model, so
    refits reuse the compiled fit. ``data = (y, X, offset, w)``. ``structured``: its
    Hessian is built as ``X' W X`` by one matrix product (:mod:`._xwx`); False: the
    same function differentiated by plain autodiff (the reference path)."""
    nuisance = response.nuisance

    def logpdf(y, eta, nu):
        return response.response_logpdf(y, eta, link, nu if nuisance else None)

    if structured:
        total = structured_loglik(logpdf, bool(nuisance))

        def loglik(params, data):
            y, x, offset, w = data
            nu = params[nuisance] if nuisance else jnp.zeros((), jnp.result_type(x))
            return total(params["beta"], nu, y, x, offset, w)

        return loglik

    def loglik(params, data):
        y, x, offset, w = data
        lp = logpdf(y, x @ params["beta"] + offset, params.get(nuisance) if nuisance else None)
        return jnp.sum(jnp.where(w > 0, w * lp, 0.0))

    return loglik


def _model_link(model, link):
    """The response family and the :class:`Link` of ``model`` (``link`` overriding)."""
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not known; use one of {tuple(MODELS) + ('multinomial',)}.")
    response, default = MODELS[model]
    link = default if link is None else link
    if link not in LINKS:
        raise ValueError(f"link={link!r} is not known; use one of {tuple(LINKS)}.")
    if isinstance(response, dist.Bernoulli) and link not in ("logit", "probit"):
        raise ValueError(f"link={link!r}: model={model!r} sets its own link; use model='logit' or 'probit'.")
    return response, LINKS[link]


def _validate(model, y, x, offset, weights, link):
    response, lnk = _model_link(model, link)
    y, x = check_design(check_finite_array("y", y).astype(float, copy=False),
                        check_finite_array("X", x).astype(float, copy=False))
    response.check(y, "y", response.response_support, owner=f"the {model} model")
    n = y.shape[0]
    offset = np.zeros(n) if offset is None else check_finite_array("offset", offset).astype(float)
    if offset.shape != (n,):
        raise ValueError(f"offset has shape {offset.shape}; it needs one value per observation ({n},).")
    w = check_weights(weights, n)
    return response, lnk, y, x, offset, (np.ones(n) if w is None else w)


# The start regression uses at most this many rows (evenly spaced) of a tall design.
START_ROWS = 20_000


def _weighted_least_squares(x, z, w):
    """The start's regression of ``z`` on ``X`` with weights ``w``, by the normal
    equations ``X'WX b = X'Wz`` and a Cholesky factor: one matrix product, 4-8x cheaper
    than a QR of a tall ``X`` (the start must be good, not exact: Newton polishes it),
    on at most ``START_ROWS`` evenly spaced rows. A rank-deficient or nearly so ``X``
    gets the minimum-norm start by SVD; the fit then flags it."""
    step = -(-x.shape[0] // max(START_ROWS, 20 * x.shape[1]))
    x, z, w = x[::step], z[::step], w[::step]
    xw = x * w[:, None]
    a, b = xw.T @ x, xw.T @ z
    try:
        chol = np.linalg.cholesky(a)
        diag = np.diag(chol)
        if np.all(diag > diag.max() * 1e-7):
            return np.linalg.solve(chol.T, np.linalg.solve(chol, b))
    except np.linalg.LinAlgError:
        pass
    sw = np.sqrt(w)
    return np.linalg.lstsq(x * sw[:, None], z * sw, rcond=None)[0]


def _start(response, link, y, x, offset, w):
    """The usual GLM start: the regression of link((y + mean y)/2) on X (exact OLS for
    the linear model), and a moment estimate of the nuisance parameter."""
    ybar = np.sum(w * y) / np.sum(w)
    mu0 = y if link.name == "identity" else (y + ybar) / 2
    # all outcomes equal (all 0/1, all zero counts): link(mu0) is infinite; start inside
    # the support, and the fit then reports the supremum at infinity (DIVERGING)
    safe = (mu0 + 0.5) / 2 if isinstance(response, dist.Bernoulli) else mu0 + 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        eta0 = np.asarray(link.fn(jnp.asarray(mu0)))
    eta0 = np.where(np.isfinite(eta0), eta0, np.asarray(link.fn(jnp.asarray(safe)))) - offset
    beta = _weighted_least_squares(x, eta0, w)
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


def _separation(margin, threshold):
    """``(kind, count)`` of the observations whose outcome the linear predictor gets
    right by more than ``threshold`` (log scale), or None when there are none."""
    exact = margin > threshold
    k = int(exact.sum())
    if k == 0:
        return None
    kind = "perfect" if k == len(margin) else "quasi-complete"
    return kind, k


def _binary_margins(res, y, x, offset):
    eta = x @ np.asarray(res.params["beta"]) + offset
    binary = (y == 0) | (y == 1)
    return xp_of(eta).where(binary, (2 * y - 1) * eta, -np.inf)


def _separation_extras(sep, n, extras, notes):
    """Record a separation found (or not) in ``extras`` and, if found, a note."""
    extras.update(separation=None if sep is None else sep[0], n_separated=0 if sep is None else sep[1])
    if sep is not None:
        notes.append(
            f"{sep[0]} separation: {sep[1]} of {n} outcomes are predicted exactly by the linear "
            "predictor, so the MLE does not exist (coefficients diverge); the estimates and "
            "standard errors are meaningless. Drop/merge the separating covariate or add a prior"
        )


def _fitted_mean(res, link, x, offset):
    """The fitted mean ``link^-1(X beta + offset)`` of each row."""
    return xp_of(x).asarray(link.inverse(jnp.asarray(x @ np.asarray(res.params["beta"]) + offset)))


def _at_infinity(res, response, link, y, x, offset, w, mu=None):
    """Why the supremum of a count or continuous GLM is at infinity, in words, or None:
    zero counts fitted by a mean running to 0, or responses fitted exactly (zero
    residual variance: the shape of a Gamma model runs to infinity, sigma's MLE of a
    linear model is 0). ``mu``: the fitted mean, when the caller has it."""
    xp = xp_of(x)
    mu = _fitted_mean(res, link, x, offset) if mu is None else mu
    if isinstance(response, (dist.Poisson, dist.NegativeBinomial)):
        k = int(((y == 0) & (w > 0) & (mu < 1e-9 * max(float(y.max()), 1.0))).sum())
        if k:
            return (f"{k} of {len(y)} zero counts are fitted by a mean running to 0 (e.g. all "
                    "counts zero, or a covariate that is non-zero only where the counts are 0): "
                    "coefficients diverge to -inf, so no finite MLE exists. Drop or merge that "
                    "covariate/category, or add a prior (log_prior)")
    if isinstance(response, dist.Gamma) and bool(xp.all(xp.where(w > 0, abs(y - mu) <= 1e-7 * abs(y), True))):
        return ("the model fits every response exactly (zero residual variance, e.g. all y "
                "equal): the Gamma shape runs to infinity, so no finite MLE exists. Check y, or "
                "use a model without a dispersion parameter")
    if isinstance(response, dist.Normal) and fits_exactly(np.sum(w * (y - mu) ** 2), y, w):
        return ("the linear predictor fits every response exactly (zero residual variance up "
                "to rounding, e.g. simulated y without noise): sigma's MLE is 0 and the "
                "log-likelihood is unbounded, so no finite MLE exists. The coefficients are the "
                "exact solution, with no sampling variance to estimate. Check y, or add the noise "
                "a simulation left out")
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
    const = np.sum(w * np.asarray(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)))
    return k / n, n * w, float(const)


def _binomial_deviance(res, link, y, x, offset, w):
    """Residual deviance ``2 sum w [y log(y/p) + (1-y) log((1-y)/(1-p))]`` (proportions)."""
    p = np.asarray(link.inverse(jnp.asarray(x @ np.asarray(res.params["beta"]) + offset)))
    dev = w * np.asarray(special.xlogy(y, y / p) + special.xlogy(1 - y, (1 - y) / (1 - p)))
    return jnp.asarray(2.0 * np.sum(dev))


def glm(y, X=None, model="linear", *, data=None, link=None, offset=None, weights=None, cov="observed",
        method="newton", maxiter=None, tol=None, log_prior=None, trials=None, hessian="auto"):
    """Fit a regression model from a design matrix (or a formula) by maximum likelihood.

    Args:
        y: responses, shape ``(n,)``; or a streamed source (``mj.stream``) whose chunks
            are dicts with ``"y"`` and ``"X"`` (optionally ``"offset"``, ``"weights"``),
            fitted by exact Newton passes over the chunks (the separation and
            at-infinity diagnoses, which need all rows in memory, are not run); or a
            formula such as ``"y ~ x1 + np.log(x2) + C(g)"`` with ``data=`` (needs the
            optional extra ``formula``: formulaic). Rows with missing values are dropped
            and the parameter ``names`` are the design matrix's columns (``Intercept``,
            ``x1``, ``C(g)[T.b]``), as statsmodels'.
        X: design matrix ``(n, p)`` (add a column of ones for an intercept); None with
            a formula.
        data: with a formula, a pandas DataFrame (or a dict of columns).
        model: ``"linear"`` (Normal; parameters ``beta``, ``sigma``), ``"logit"``,
            ``"probit"`` (0/1 outcomes or proportions), ``"poisson"``, ``"negbin"``
            (NB2: variance ``mu + alpha mu^2``; ``beta``, ``alpha``), ``"gamma"``
            (``beta``, ``shape``; the dispersion is ``1/shape``), ``"multinomial"``
            (softmax regression: ``y`` holds class labels, numbers or strings;
            ``P(y = k | x) = softmax([0, x' beta])_k``, the first of the sorted classes
            is the reference whose coefficients are 0, as in statsmodels' ``MNLogit``;
            ``beta`` has shape ``(p, K - 1)``, named ``"<column>[<y>=<class>]"``;
            ``extras["classes"]`` lists the classes; separation is flagged as for
            logit).
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
            deviance. ``nobs`` counts the rows of positive weight.
        log_prior: ``log_prior(params) -> scalar`` for a MAP fit, e.g.
            ``mj.priors.normal(1.0, on="beta")`` (ridge); see :mod:`mlejax.priors`.
            With a proper prior the MAP exists also under separation.
        hessian: ``"auto"`` (default): ``"xwx"`` for a large design (``n p^2`` at
            least ``2^26``, where it saves more time than its slightly longer first
            compilation costs), else ``"autodiff"``. ``"xwx"``: the Hessian in
            ``beta`` is built as ``X' W X`` by one matrix product
            with the observed-information weights (for
            canonical links the expected ones, Fisher scoring; for the others
            Newton-Raphson), so the standard errors are the inverse observed
            information; ``"autodiff"``: autodiff's generic Hessian of the same
            log-likelihood (the reference; the same numbers, about twice the work
            per Hessian on large designs). The multinomial model always uses autodiff.

    Returns:
        A :class:`ModelResult`: ``params = {"beta": ..., <nuisance>: ...}`` with the
        inference of any fit. ``extras`` holds, for the linear model, ``sigma2_mle``
        (RSS/n, the MLE), ``sigma2_unbiased`` (RSS/(n-p), the textbook one) and
        ``stderr_unbiased`` (the OLS standard errors of ``beta``, which use it);
        for binary models ``separation`` (None, "perfect" or "quasi-complete") and
        ``n_separated``: with separation the MLE does not exist, the fit is reported
        as not identified (standard errors NaN) with a
        :class:`PerfectSeparationWarning`. Whenever the MLE is at infinity
        (separation, all outcomes equal, zero counts fitted by a vanishing mean, a
        Gamma fitting every response exactly) the status is ``DIVERGING``, the
        standard errors NaN, and the warning names the cause. A pandas DataFrame
        ``X`` names the coefficients after its columns.

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

        Classification by maximum likelihood (softmax regression, reference class "a"):

        >>> y = np.array(["a", "c", "b", "a", "b", "a", "c", "c", "a", "b", "b", "c"])
        >>> X = np.column_stack([np.ones(12), np.arange(12) % 4])
        >>> res = mj.glm(y, X, "multinomial")
        >>> res.names, res.extras["classes"]
        (('const[y=b]', 'const[y=c]', 'x2[y=b]', 'x2[y=c]'), ('a', 'b', 'c'))
    """
    if hessian not in HESSIANS:
        raise ValueError(f"hessian={hessian!r} is not known; use one of {HESSIANS}.")
    if getattr(y, "streamed", False):
        return _stream_glm(y, model, link=link, cov=cov, method=method, maxiter=maxiter, tol=tol, log_prior=log_prior)
    if isinstance(y, str):
        return _formula_glm(y, X if data is None else data, model, link=link, offset=offset, weights=weights,
                            cov=cov, method=method, maxiter=maxiter, tol=tol, log_prior=log_prior,
                            hessian=hessian)
    columns = tuple(str(c) for c in X.columns) if hasattr(X, "columns") else None
    if model == "multinomial":
        refuse_sharded((y, X), "model='multinomial'")
        return _multinomial_glm(y, X, columns, getattr(y, "name", None) or "y", offset=offset, weights=weights,
                                link=link, trials=trials, cov=cov, method=method, maxiter=maxiter, tol=tol,
                                log_prior=log_prior)
    const = 0.0
    if model == "binomial" or trials is not None:
        refuse_sharded((y, X), "model='binomial' with trials=")
        if model != "binomial" or trials is None:
            raise ValueError("trials= goes with model='binomial' (y successes out of trials).")
        y, weights, const = _binomial(y, trials, weights)
    if spans_devices((y, X, offset, weights)):  # sharded: every step on the devices
        response, lnk = _model_link(model, link)
        y, x, off, w = sharded_validate(response, f"the {model} model", y, X, offset, weights)
        init = sharded_start(response, lnk, y, x, off, w)
    else:
        response, lnk, y, x, off, w = _validate(model, y, X, offset, weights, link)
        init = _start(response, lnk, y, x, off, w)
    n = int((w > 0).sum())  # rows of weight 0 are not observations
    dtype = jnp.result_type(float)
    data = tuple(jnp.asarray(a, dtype) for a in (y, x, off, w))
    structured = hessian == "xwx" or (hessian == "auto" and x.shape[0] * x.shape[1] ** 2 >= XWX_MIN_WORK)
    ll = glm_loglik(response, lnk, structured)
    # y, X, offset and weights were checked finite above: no second pass over X in the fit
    res = quiet_fit(fit, ll, init, data, cov=cov, method=method, maxiter=maxiter, tol=tol, nobs=n,
                    log_prior=log_prior, check_finite=False)
    extras, notes = {}, []
    if model == "binomial":
        extras["deviance"] = _binomial_deviance(res, lnk, y, x, off, w)
        res = dataclasses.replace(res, loglik=res.loglik + const)
    if columns is not None and len(columns) == x.shape[1]:
        res = dataclasses.replace(res, names=columns + res.names[len(columns):])
    mu = None
    if isinstance(response, dist.Normal):
        mu = _fitted_mean(res, lnk, x, off)  # the mean under the model's link, not X beta
        rss = float((w * (y - mu) ** 2).sum())
        m = float(w.sum())
        p = x.shape[1]
        extras.update(
            sigma2_mle=jnp.asarray(rss / m),
            sigma2_unbiased=jnp.asarray(rss / (m - p)) if m > p else jnp.asarray(np.nan),
            stderr_unbiased=res.stderr["beta"] * math.sqrt(m / (m - p)) if m > p else res.stderr["beta"] * np.nan,
        )
    if isinstance(response, dist.Bernoulli) and log_prior is None:
        sep = _separation(_binary_margins(res, y, x, off), _SEPARATION_MARGIN[lnk.name])
        _separation_extras(sep, n, extras, notes)
    elif log_prior is None:
        cause = _at_infinity(res, response, lnk, y, x, off, w, mu)
        notes += [cause] if cause else []
    return _finish(res, extras, notes, dtype)


def _finish(res, extras, notes, dtype):
    """The model result; where ``notes`` say the supremum is at infinity, status
    ``DIVERGING`` with NaN standard errors (whatever the cause) and a warning naming it."""
    if not notes:
        return with_notes(res, extras, notes, dtype)
    b = np.asarray(res._spec.natural_flat(res.params))
    separated = bool(extras.get("separation"))
    return with_notes(res, extras, notes, dtype, null_vector=jnp.asarray(b / np.linalg.norm(b)),
                      warning=PerfectSeparationWarning if separated else ConvergenceWarning)


def _formula_glm(formula, data, model, **kw):
    """``glm`` from a formula: the design from :mod:`._formula`, the names from its columns."""
    y, x, names, rows, response = design(formula, data, labels=model == "multinomial")
    for k in ("offset", "weights"):  # per-row arguments follow the rows kept
        if kw[k] is not None and len(rows) < len(np.asarray(kw[k])):
            kw[k] = np.asarray(kw[k])[rows]
    if model == "multinomial":
        kw.pop("hessian")
        return _multinomial_glm(y, x, names, response, **kw)
    res = glm(y, x, model, **kw)
    return dataclasses.replace(res, names=names + res.names[len(names):])


def _default_columns(x):
    """statsmodels' names of the columns of an array design: ``const`` for a column of
    ones, ``x1``, ``x2``, ... for the others (numbered by position)."""
    return tuple("const" if np.all(x[:, j] == 1) else f"x{j + 1}" for j in range(x.shape[1]))


def _multinomial_glm(y, X, columns, yname, *, offset, weights, link, cov, method, maxiter, tol, log_prior,
                     trials=None):
    """Softmax regression (``model="multinomial"``), see :mod:`._multinomial`."""
    for arg, value in (("offset", offset), ("link", link), ("trials", trials)):
        if value is not None:
            raise ValueError(f"{arg}= does not apply to model='multinomial' (softmax link, class labels); drop it.")
    onehot, classes = multinomial.encode(y)
    x = check_finite_array("X", X).astype(float, copy=False)
    x = x[:, None] if x.ndim == 1 else x
    n_rows = onehot.shape[0]
    if x.ndim != 2 or x.shape[0] != n_rows:
        raise ValueError(f"X has shape {x.shape} but y has {n_rows} labels; X must be (n, p), one row per label.")
    w = check_weights(weights, n_rows)
    w = np.ones(n_rows) if w is None else w
    dtype = jnp.result_type(float)
    data = tuple(jnp.asarray(a, dtype) for a in (onehot, x, w))
    n = int(np.sum(w > 0))
    res = quiet_fit(fit, multinomial.multinomial_loglik, multinomial.start(x, onehot, w), data, cov=cov,
                    method=method, maxiter=maxiter, tol=tol, nobs=n, log_prior=log_prior)
    columns = columns if columns is not None and len(columns) == x.shape[1] else _default_columns(x)
    res = dataclasses.replace(res, names=multinomial.names(columns, classes, yname))
    extras, notes = {"classes": classes}, []
    if log_prior is None:
        margin = multinomial.margins(res.params["beta"], x, onehot)
        _separation_extras(_separation(np.where(w > 0, margin, -np.inf), _SEPARATION_MARGIN["logit"]), n,
                           extras, notes)
    return _finish(res, extras, notes, dtype)


__all__ = ["glm", "PerfectSeparationWarning"]


def _stream_glm(source, model, *, link, cov, method, maxiter, tol, log_prior):
    """``glm`` on a streamed source: each chunk checked and turned into the model's data
    tuple as it is read; the start from the first chunk."""
    first, n0 = next(iter(source.chunks()))
    if not isinstance(first, dict) or not {"y", "X"} <= set(first):
        raise ValueError("a streamed glm needs chunks that are dicts with 'y' and 'X' (and optionally 'offset', "
                         "'weights'): e.g. mj.stream.from_npy({'y': 'y.npy', 'X': 'X.npy'}).")

    def rows(chunk):
        _, _, y, x, off, w = _validate(model, chunk["y"], chunk["X"], chunk.get("offset"), chunk.get("weights"),
                                       link)
        return tuple(np.asarray(a, float) for a in (y, x, off, w))

    response, lnk = _validate(model, *rows({k: np.asarray(v)[:n0] for k, v in first.items()}), link)[:2]
    init = _start(response, lnk, *rows({k: np.asarray(v)[:n0] for k, v in first.items()}))
    res = quiet_fit(fit, glm_loglik(response, lnk), init, Mapped(source, rows), cov=cov, method=method,
                    maxiter=maxiter, tol=tol, log_prior=log_prior)
    out = to_model_result(res, {}, ())
    warn_result(out, stacklevel=3)
    return out
