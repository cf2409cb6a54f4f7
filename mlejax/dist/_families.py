"""Distribution families and :func:`fit_dist`: the one description of each density.

A family is a small frozen dataclass; the same object is what :func:`fit_dist`
fits, what ``mj.Mixture(family, k)`` mixes, what an ``mj.glm`` response is and
what an HMM emission is. Its pieces:

- ``logpdf(params, x)``: the log-density (or log-mass) of each observation;
- ``start(x, w)``: a cheap weighted moment starting point (natural scale);
- ``mle(x, w)``: the closed-form weighted MLE, where one exists (else ``None``:
  mixtures then take autodiff Newton M-steps); pure ``jax.numpy``, so an EM
  M-step can call it under ``jit``/``vmap``;
- ``fisher(params)``: the expected Fisher information of one observation, in the
  order of the fit's parameter names (sorted keys), where it is known;
- ``sample(key, params, n)``: ``n`` draws;
- ``constraints``: which parameters are positive / probabilities (the markers
  ``init(params)`` puts on a start), and ``check(x)``: the support, refused with an
  error naming ``x``;
- for regression responses: ``nuisance`` (the parameter a GLM estimates beside
  ``beta``), ``mean_params(mu, nuisance)`` (the parameters with mean ``mu``),
  ``nuisance_start`` and ``response_support``.

A new family subclasses :class:`Family` (or, from a log-density and a start with
constraint markers alone, :class:`Custom`). Weights are frequency weights: the
log-likelihood is ``sum(w * logpdf)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special, stats

from .._constraints import Bounded, Fixed, Positive, is_marker
from .._fit import fit
from .._jit import cached, jit
from .._modelfit import (
    check_finite_array,
    check_weights,
    quiet_fit,
    warn_result,
    with_information_jit,
)
from .._status import Status
from ..backends._shard import xp_of
from ._scale import data_scale, scale_data, unscale_result

_EULER = 0.5772156649015329


def _wmean(x, w):
    return jnp.tensordot(w, x, axes=1) / jnp.sum(w)


def _wvar(x, w, m=None):
    m = _wmean(x, w) if m is None else m
    return _wmean((x - m) ** 2, w)


def _weighted_median(x, w):
    """The weighted median: where the cumulative weight first passes half; when it
    equals half exactly at some value (e.g. equal weights, even n), the midpoint of
    that value and the next (numpy's median). Any point between them maximises the
    Laplace likelihood."""
    order = jnp.argsort(x)
    xs, ws = x[order], w[order]
    c = jnp.cumsum(ws)
    half = 0.5 * c[-1]
    i = jnp.argmax(c >= half)
    j = jnp.argmax(c > half)
    return jnp.where(c[i] == half, 0.5 * (xs[i] + xs[j]), xs[i])


def _trigamma(a):
    return special.polygamma(1, a)


# Support checks: (predicate on a numpy array, description for the error message).
def _is_int(x):
    return bool(xp_of(x).all(x == xp_of(x).round(x)))


_SUPPORT = {
    "real": (lambda x: True, "real numbers"),
    "positive": (lambda x: bool(xp_of(x).all(x > 0)), "positive numbers (> 0)"),
    "nonneg": (lambda x: bool(xp_of(x).all(x >= 0)), "non-negative counts (integers or not)"),
    "unit": (lambda x: bool(xp_of(x).all((x > 0) & (x < 1))), "numbers strictly between 0 and 1"),
    "proportion": (lambda x: bool(xp_of(x).all((x >= 0) & (x <= 1))), "values in the unit interval [0, 1] (0/1 outcomes or proportions)"),
    "binary": (lambda x: bool(xp_of(x).all((x == 0) | (x == 1))), "0/1 values"),
    "count": (lambda x: bool(xp_of(x).all(x >= 0)) and _is_int(x), "non-negative integers (counts)"),
    "trials": (lambda x: bool(xp_of(x).all(x >= 1)) and _is_int(x), "integers >= 1 (the trial of the first success)"),
    "categories": (lambda x: bool(xp_of(x).all(x >= 0)) and _is_int(x), "non-negative integer category counts"),
}
# families of discrete data: no density that can collapse onto a point, no continuous scale
DISCRETE_SUPPORTS = ("count", "binary", "trials", "categories")

_WRAP = {"positive": Positive, "unit": lambda v: Bounded(0.0, 1.0, v)}
_PLACEHOLDER = {"positive": 1.0, "unit": 0.5}


def _draw_shape(n, *params):
    return (int(n),) + jnp.broadcast_shapes(*(jnp.shape(p) for p in params))


def _float(a):
    return jnp.asarray(a, jnp.result_type(float))


@dataclasses.dataclass(frozen=True)
class Family:
    """Base of the distribution families (the protocol is in the module docstring).

    A subclass writes ``logpdf`` and ``start`` (or ``mle``, when the weighted MLE has
    a closed form) and declares ``constraints``; the rest has defaults.

    Examples:
        >>> import jax.numpy as jnp, mlejax as mj
        >>> class Gumbel(mj.dist.Family):
        ...     constraints = {"scale": "positive"}
        ...     def logpdf(self, p, x):
        ...         z = (x - p["loc"]) / p["scale"]
        ...         return -jnp.log(p["scale"]) - z - jnp.exp(-z)
        ...     def start(self, x, w):
        ...         m = jnp.sum(w * x) / jnp.sum(w)
        ...         s = jnp.sqrt(jnp.sum(w * (x - m) ** 2) / jnp.sum(w)) * 0.78
        ...         return {"loc": m - 0.577 * s, "scale": s}
        >>> x = jnp.array([0.3, 1.2, -0.4, 2.5, 0.9, 0.1, 1.7, 0.6])
        >>> res = mj.fit_dist(Gumbel(), x)
        >>> bool(res.converged), sorted(res.params)
        (True, ['loc', 'scale'])
    """

    constraints: ClassVar[dict] = {}  # name -> "positive" | "unit"; others free
    support: ClassVar[str] = "real"
    information: ClassVar[str] = "observed"  # "expected": the observed one is unusable
    nuisance: ClassVar[str | None] = None  # the parameter a GLM estimates beside beta
    response_support: ClassVar[str | None] = None  # a GLM response's support (default: support)
    # name -> power of the data's unit in that parameter (1: location/scale, -1: rate,
    # 2: variance, 0: shape), for families whose parameters scale with the data; fit_dist
    # then fits data of extreme magnitude rescaled, exactly (mlejax/dist/_scale.py)
    scaling: ClassVar[dict] = {}

    def logpdf(self, params, x):
        raise NotImplementedError(f"{type(self).__name__} must define logpdf(params, x).")

    def start(self, x, w):
        return self.mle(x, w)

    def mle(self, x, w):
        return None

    @property
    def closed_form(self) -> bool:
        """True when ``mle`` gives the weighted MLE in closed form (a mixture's M-step)."""
        return type(self).mle is not Family.mle

    def fisher(self, params):
        return None

    def sample(self, key, params, n):
        """``n`` independent draws, shape ``(n,) + event shape``."""
        raise NotImplementedError(f"{type(self).__name__} has no sampler; define sample(key, params, n).")

    def prepare(self, x):
        """The data as ``logpdf`` takes them (e.g. labels to one-hot)."""
        return x

    def check(self, x: np.ndarray, name: str = "x", support: str | None = None, owner: str | None = None) -> None:
        """Refuse data outside the support (``support``: another entry of the support
        table, e.g. a GLM's ``response_support``) with an error naming ``name``."""
        ok, what = _SUPPORT[support or self.support]
        if not ok(x):
            raise ValueError(
                f"{name} is outside the support of {owner or type(self).__name__}: it needs {what}. "
                "Check the data or choose another family."
            )

    def init(self, params):
        """``params`` wrapped in this family's constraint markers (a start for ``mj.fit``)."""
        return {k: _WRAP[self.constraints[k]](v) if k in self.constraints else v for k, v in params.items()}

    def template(self, x):
        """One component's parameters for data ``x`` as constraint markers around
        placeholder values (their shapes and transforms; a mixture's parametrisation)."""
        shapes = jax.eval_shape(self.start, x, jnp.ones(x.shape[:1], x.dtype))
        return self.init({k: jnp.full(s.shape, _PLACEHOLDER.get(self.constraints.get(k), 0.0), s.dtype)
                          for k, s in shapes.items()})

    def loglik(self, params, x, weights=None):
        """The total (weighted) log-likelihood of ``x``."""
        lp = self.logpdf(params, x)
        if weights is None:
            return jnp.sum(lp)
        return jnp.sum(jnp.where(weights > 0, weights * lp, 0.0))

    # -- as a regression response (mj.glm) ------------------------------------------
    def mean_params(self, mu, nuisance):
        """The parameters whose mean is ``mu`` (and nuisance parameter ``nuisance``)."""
        raise NotImplementedError(f"{type(self).__name__} is not parametrised by its mean (no GLM response).")

    def response_logpdf(self, y, eta, link, nuisance):
        """Log-density of responses ``y`` given the linear predictor ``eta`` and a link."""
        return self.logpdf(self.mean_params(link.inverse(eta), nuisance), y)

    def nuisance_start(self, y, mu, w):
        """A moment start of the nuisance parameter given fitted means ``mu`` (numpy)."""
        return None


def _wmean_np(a, w):
    xp = xp_of(a)
    return float(xp.sum(w * a) / xp.sum(w))


@dataclasses.dataclass(frozen=True)
class Normal(Family):
    """Normal(mu, sigma)."""

    constraints: ClassVar[dict] = {"sigma": "positive"}
    nuisance: ClassVar[str] = "sigma"
    scaling: ClassVar[dict] = {"mu": 1, "sigma": 1}

    def logpdf(self, p, x):
        return stats.norm.logpdf(x, p["mu"], p["sigma"])

    def mle(self, x, w):
        m = _wmean(x, w)
        return {"mu": m, "sigma": jnp.sqrt(_wvar(x, w, m))}

    def fisher(self, p):
        s2 = p["sigma"] ** 2
        return jnp.diag(jnp.stack([1.0 / s2, 2.0 / s2]))

    def sample(self, key, p, n):
        return p["mu"] + p["sigma"] * jax.random.normal(key, _draw_shape(n, p["mu"], p["sigma"]), jnp.result_type(float))

    def mean_params(self, mu, nuisance):
        return {"mu": mu, "sigma": nuisance}

    def nuisance_start(self, y, mu, w):
        return float(np.sqrt(max(_wmean_np((y - mu) ** 2, w), 1e-300)))


@dataclasses.dataclass(frozen=True)
class LogNormal(Normal):
    """LogNormal(mu, sigma): log(x) ~ Normal(mu, sigma) (scipy: s=sigma, scale=exp(mu))."""

    support: ClassVar[str] = "positive"
    log_data: ClassVar[bool] = True  # fitted on log(x): any magnitude of x is safe
    scaling: ClassVar[dict] = {}  # x * s shifts mu by log(s): not a scaling

    def logpdf(self, p, x):
        lx = jnp.log(x)
        return stats.norm.logpdf(lx, p["mu"], p["sigma"]) - lx

    def mle(self, x, w):
        return super().mle(jnp.log(x), w)

    def sample(self, key, p, n):
        return jnp.exp(super().sample(key, p, n))

    def mean_params(self, mu, nuisance):
        raise NotImplementedError("LogNormal is not parametrised by its mean (no GLM response).")


@dataclasses.dataclass(frozen=True)
class Poisson(Family):
    """Poisson(rate)."""

    constraints: ClassVar[dict] = {"rate": "positive"}
    support: ClassVar[str] = "count"
    response_support: ClassVar[str] = "nonneg"

    def logpdf(self, p, x):
        return special.xlogy(x, p["rate"]) - p["rate"] - special.gammaln(x + 1.0)

    def mle(self, x, w):
        return {"rate": _wmean(x, w)}

    def fisher(self, p):
        return jnp.reshape(1.0 / p["rate"], (1, 1))

    def sample(self, key, p, n):
        return _float(jax.random.poisson(key, p["rate"], _draw_shape(n, p["rate"])))

    def mean_params(self, mu, nuisance):
        return {"rate": mu}


@dataclasses.dataclass(frozen=True)
class Exponential(Family):
    """Exponential(rate), density ``rate * exp(-rate x)`` (scipy: scale = 1/rate)."""

    constraints: ClassVar[dict] = {"rate": "positive"}
    support: ClassVar[str] = "positive"
    scaling: ClassVar[dict] = {"rate": -1}

    def logpdf(self, p, x):
        return jnp.log(p["rate"]) - p["rate"] * x

    def mle(self, x, w):
        return {"rate": 1.0 / _wmean(x, w)}

    def fisher(self, p):
        return jnp.reshape(1.0 / p["rate"] ** 2, (1, 1))

    def sample(self, key, p, n):
        return jax.random.exponential(key, _draw_shape(n, p["rate"]), jnp.result_type(float)) / p["rate"]

    def mean_params(self, mu, nuisance):
        return {"rate": 1.0 / mu}


@dataclasses.dataclass(frozen=True)
class Binomial(Family):
    """Binomial(n, p): successes out of ``n`` trials (``n`` known). ``Bernoulli`` is n=1."""

    n: int = 1
    constraints: ClassVar[dict] = {"p": "unit"}
    support: ClassVar[str] = "count"

    def __post_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"n={self.n!r}: the number of trials must be an integer >= 1.")

    def check(self, x, name="x", support=None, owner=None):
        super().check(x, name, support, owner)
        if np.any(x > self.n):
            raise ValueError(f"{name} has values above n={self.n} (e.g. {x[x > self.n][0]}); "
                             f"a {type(self).__name__} count is at most the number of trials.")

    def _log_choose(self, x):
        """``log C(n, x)``; ``None`` where it is 0 (Bernoulli)."""
        n = self.n
        return special.gammaln(n + 1.0) - special.gammaln(x + 1.0) - special.gammaln(n - x + 1.0)

    def _with_choose(self, x, lp):
        lc = self._log_choose(x)
        return lp if lc is None else lc + lp

    def logpdf(self, p, x):
        return self._with_choose(x, special.xlogy(x, p["p"]) + special.xlog1py(self.n - x, -p["p"]))

    def mle(self, x, w):
        return {"p": _wmean(x, w) / self.n}

    def fisher(self, p):
        q = p["p"]
        return jnp.reshape(self.n / (q * (1 - q)), (1, 1))

    def sample(self, key, p, n):
        return _float(jax.random.binomial(key, self.n, p["p"], _draw_shape(n, p["p"])))

    def mean_params(self, mu, nuisance):
        return {"p": mu / self.n}

    def response_logpdf(self, y, eta, link, nuisance):
        # log P(success) and log P(failure) from eta directly (stable in the tails).
        lp, lq = link.log_probs(eta)
        return self._with_choose(y, jnp.where(y > 0, y * lp, 0.0) + jnp.where(y < self.n, (self.n - y) * lq, 0.0))


@dataclasses.dataclass(frozen=True)
class Bernoulli(Binomial):
    """Bernoulli(p): x in {0, 1}. As a GLM response, proportions in [0, 1] are allowed
    (the quasi-likelihood ``y log p + (1 - y) log(1 - p)``)."""

    support: ClassVar[str] = "binary"
    response_support: ClassVar[str] = "proportion"

    def _log_choose(self, x):
        return None  # log C(1, x) = 0 on {0, 1}; left out for proportions

    def sample(self, key, p, n):
        return _float(jax.random.bernoulli(key, p["p"], _draw_shape(n, p["p"])))


@dataclasses.dataclass(frozen=True)
class Geometric(Family):
    """Geometric(p): the trial of the first success, x = 1, 2, ... (scipy's ``geom``)."""

    constraints: ClassVar[dict] = {"p": "unit"}
    support: ClassVar[str] = "trials"

    def logpdf(self, p, x):
        return jnp.log(p["p"]) + special.xlog1py(x - 1.0, -p["p"])

    def mle(self, x, w):
        return {"p": 1.0 / _wmean(x, w)}

    def sample(self, key, p, n):
        return _float(jax.random.geometric(key, p["p"], _draw_shape(n, p["p"])))

    def fisher(self, p):
        q = p["p"]
        return jnp.reshape(1.0 / (q**2 * (1 - q)), (1, 1))


@dataclasses.dataclass(frozen=True)
class Laplace(Family):
    """Laplace(loc, scale). The MLE is the (weighted) median and the mean absolute
    deviation from it. The log-likelihood has no curvature in ``loc`` (it is piecewise
    linear), so standard errors come from the expected information."""

    constraints: ClassVar[dict] = {"scale": "positive"}
    information: ClassVar[str] = "expected"
    scaling: ClassVar[dict] = {"loc": 1, "scale": 1}

    def logpdf(self, p, x):
        return stats.laplace.logpdf(x, p["loc"], p["scale"])

    def mle(self, x, w):
        m = _weighted_median(x, w)
        return {"loc": m, "scale": _wmean(jnp.abs(x - m), w)}

    def fisher(self, p):
        b2 = p["scale"] ** 2
        return jnp.diag(jnp.stack([1.0 / b2, 1.0 / b2]))

    def sample(self, key, p, n):
        shape = _draw_shape(n, p["loc"], p["scale"])
        return p["loc"] + p["scale"] * jax.random.laplace(key, shape, jnp.result_type(float))


@dataclasses.dataclass(frozen=True)
class Gamma(Family):
    """Gamma(shape, rate), density ``rate^shape x^(shape-1) exp(-rate x) / Gamma(shape)``
    (scipy: a=shape, scale=1/rate)."""

    constraints: ClassVar[dict] = {"shape": "positive", "rate": "positive"}
    support: ClassVar[str] = "positive"
    nuisance: ClassVar[str] = "shape"
    scaling: ClassVar[dict] = {"shape": 0, "rate": -1}

    def logpdf(self, p, x):
        a, b = p["shape"], p["rate"]
        return a * jnp.log(b) - special.gammaln(a) + (a - 1) * jnp.log(x) - b * x

    def start(self, x, w):
        # Minka's (2002) closed-form approximation to the shape MLE.
        m = _wmean(x, w)
        s = jnp.log(m) - _wmean(jnp.log(x), w)
        a = (3 - s + jnp.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
        return {"shape": a, "rate": a / m}

    def fisher(self, p):  # order: rate, shape
        a, b = p["shape"], p["rate"]
        return jnp.array([[a / b**2, -1 / b], [-1 / b, _trigamma(a)]])

    def sample(self, key, p, n):
        a, b = p["shape"], p["rate"]
        return jax.random.gamma(key, a, _draw_shape(n, a, b), jnp.result_type(float)) / b

    def mean_params(self, mu, nuisance):  # shape nu, mean mu: rate nu / mu
        return {"shape": nuisance, "rate": nuisance / mu}

    def nuisance_start(self, y, mu, w):
        return float(1.0 / max(_wmean_np((y - mu) ** 2 / mu**2, w), 1e-8))


@dataclasses.dataclass(frozen=True)
class Beta(Family):
    """Beta(a, b) on (0, 1)."""

    constraints: ClassVar[dict] = {"a": "positive", "b": "positive"}
    support: ClassVar[str] = "unit"

    def logpdf(self, p, x):
        return stats.beta.logpdf(x, p["a"], p["b"])

    def start(self, x, w):
        m = _wmean(x, w)
        c = m * (1 - m) / _wvar(x, w, m) - 1
        c = jnp.where(c > 0, c, 1.0)
        return {"a": m * c, "b": (1 - m) * c}

    def fisher(self, p):
        a, b = p["a"], p["b"]
        t = _trigamma(a + b)
        return jnp.array([[_trigamma(a) - t, -t], [-t, _trigamma(b) - t]])

    def sample(self, key, p, n):
        return jax.random.beta(key, p["a"], p["b"], _draw_shape(n, p["a"], p["b"]), jnp.result_type(float))


@dataclasses.dataclass(frozen=True)
class Weibull(Family):
    """Weibull(shape, scale), density ``(k/l) (x/l)^(k-1) exp(-(x/l)^k)``
    (scipy's ``weibull_min`` with c=shape)."""

    constraints: ClassVar[dict] = {"shape": "positive", "scale": "positive"}
    support: ClassVar[str] = "positive"
    scaling: ClassVar[dict] = {"shape": 0, "scale": 1}

    def logpdf(self, p, x):
        k, lam = p["shape"], p["scale"]
        z = x / lam
        return jnp.log(k / lam) + (k - 1) * jnp.log(z) - z**k

    def start(self, x, w):
        lx = jnp.log(x)
        k = jnp.pi / jnp.sqrt(6 * _wvar(lx, w))  # the sd of log x is pi / (k sqrt 6)
        return {"shape": k, "scale": jnp.exp(_wmean(lx, w) + _EULER / k)}

    def fisher(self, p):  # order: scale, shape
        k, lam = p["shape"], p["scale"]
        c = (_EULER - 1) / lam
        return jnp.array([[k**2 / lam**2, c], [c, ((1 - _EULER) ** 2 + jnp.pi**2 / 6) / k**2]])

    def sample(self, key, p, n):
        k, lam = p["shape"], p["scale"]
        return lam * jax.random.weibull_min(key, 1.0, k, _draw_shape(n, k, lam), jnp.result_type(float))


@dataclasses.dataclass(frozen=True)
class StudentT(Family):
    """Student-t(loc, scale, df) (scipy's ``t``)."""

    constraints: ClassVar[dict] = {"scale": "positive", "df": "positive"}
    scaling: ClassVar[dict] = {"loc": 1, "scale": 1, "df": 0}

    def logpdf(self, p, x):
        return stats.t.logpdf(x, p["df"], p["loc"], p["scale"])

    def start(self, x, w):
        m = _weighted_median(x, w)
        mad = _weighted_median(jnp.abs(x - m), w)
        sd = jnp.sqrt(_wvar(x, w))
        scale = jnp.where(mad > 0, 1.4826 * mad, sd)  # MAD is 0 when over half the values tie
        return {"loc": m, "scale": scale, "df": jnp.asarray(5.0, x.dtype)}

    def fisher(self, p):  # order: df, loc, scale (Lange, Little & Taylor 1989)
        v, s = p["df"], p["scale"]
        i_vv = 0.25 * (_trigamma(v / 2) - _trigamma((v + 1) / 2)) - (v + 5) / (2 * v * (v + 1) * (v + 3))
        i_vs = -2 / ((v + 1) * (v + 3) * s)
        i_mm = (v + 1) / ((v + 3) * s**2)
        i_ss = 2 * v / ((v + 3) * s**2)
        z = jnp.zeros_like(v)
        return jnp.array([[i_vv, z, i_vs], [z, i_mm, z], [i_vs, z, i_ss]])

    def sample(self, key, p, n):
        shape = _draw_shape(n, p["df"], p["loc"], p["scale"])
        return p["loc"] + p["scale"] * jax.random.t(key, p["df"], shape, jnp.result_type(float))


@dataclasses.dataclass(frozen=True)
class NegativeBinomial(Family):
    """NegativeBinomial(mean, alpha), the NB2 form: variance ``mean + alpha mean^2``
    (scipy's ``nbinom`` with n = 1/alpha, p = n / (n + mean))."""

    constraints: ClassVar[dict] = {"mean": "positive", "alpha": "positive"}
    support: ClassVar[str] = "count"
    response_support: ClassVar[str] = "nonneg"
    nuisance: ClassVar[str] = "alpha"

    def logpdf(self, p, x):
        return nb2_logpmf(x, p["mean"], p["alpha"])

    def start(self, x, w):
        m = _wmean(x, w)
        over = (_wvar(x, w, m) - m) / m**2
        return {"mean": m, "alpha": jnp.where(over > 1e-3, over, 1e-3)}

    def sample(self, key, p, n):  # a gamma-Poisson mixture
        m, a = p["mean"], p["alpha"]
        k1, k2 = jax.random.split(key)
        lam = jax.random.gamma(k1, 1.0 / a, _draw_shape(n, m, a), jnp.result_type(float)) * a * m
        return _float(jax.random.poisson(k2, lam))

    def mean_params(self, mu, nuisance):
        return {"mean": mu, "alpha": nuisance}

    def nuisance_start(self, y, mu, w):
        return float(max(_wmean_np(((y - mu) ** 2 - mu) / mu**2, w), 1e-2))


def nb2_logpmf(y, mu, alpha):
    """log P(y) of the NB2 negative binomial with mean ``mu`` and variance ``mu + alpha mu^2``."""
    r = 1.0 / alpha
    return (
        special.gammaln(y + r)
        - special.gammaln(r)
        - special.gammaln(y + 1.0)
        - r * jnp.log1p(alpha * mu)
        + special.xlogy(y, alpha * mu)
        - y * jnp.log1p(alpha * mu)
    )


@dataclasses.dataclass(frozen=True)
class Multinomial(Family):
    """Multinomial(n, probs) over ``k`` categories: each observation is a row of ``k``
    counts summing to ``n``. The free parameters are ``p``, the first ``k - 1``
    probabilities (the last is ``1 - sum(p)``; :meth:`probs` gives all ``k``)."""

    k: int = 2
    n: int = 1
    support: ClassVar[str] = "categories"
    constraints: ClassVar[dict] = {"p": "unit"}

    def __post_init__(self):
        for name in ("k", "n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (2 if name == "k" else 1):
                raise ValueError(f"{name}={v!r} must be an integer >= {2 if name == 'k' else 1}.")

    @staticmethod
    def probs(params):
        """All ``k`` probabilities from the ``k - 1`` free ones."""
        p = params["p"]
        return jnp.concatenate([p, 1.0 - jnp.sum(p, keepdims=True)])

    def check(self, x, name="x", support=None, owner=None):
        if x.ndim != 2 or x.shape[1] != self.k:
            raise ValueError(f"{name} has shape {x.shape}; Multinomial(k={self.k}) needs rows of {self.k} counts.")
        if not (np.all(x >= 0) and _is_int(x)) or np.any(x.sum(axis=1) != self.n):
            raise ValueError(f"{name} is outside the support: each row must be {self.k} non-negative "
                             f"integer counts summing to n={self.n}.")

    def sample(self, key, p, n):
        return _float(jax.random.multinomial(key, self.n, self.probs(p), shape=(int(n), self.k)))

    def logpdf(self, p, x):
        coef = special.gammaln(self.n + 1.0) - jnp.sum(special.gammaln(x + 1.0), axis=-1)
        return coef + jnp.sum(special.xlogy(x, self.probs(p)), axis=-1)

    def mle(self, x, w):
        return {"p": _wmean(x[:, :-1], w) / self.n}

    def fisher(self, params):
        p = params["p"]
        last = 1.0 - jnp.sum(p)
        return self.n * (jnp.diag(1.0 / p) + 1.0 / last)


@dataclasses.dataclass(frozen=True)
class Categorical(Multinomial):
    """Categorical over ``k`` categories: each observation is a label 0..k-1. Same
    parameters as ``Multinomial(k, n=1)`` (``p``: the first ``k - 1`` probabilities)."""

    def check(self, x, name="x", support=None, owner=None):
        if x.ndim != 1 or not (np.all((x >= 0) & (x < self.k)) and _is_int(x)):
            raise ValueError(f"{name} is outside the support: labels must be integers 0..{self.k - 1} in a 1-d array.")

    def prepare(self, x):
        return jax.nn.one_hot(jnp.asarray(x, jnp.int32), self.k, dtype=jnp.result_type(float))

    def sample(self, key, p, n):
        """``n`` labels (as floats, like the data ``logpdf`` gets before ``prepare``)."""
        return _float(jax.random.categorical(key, jnp.log(self.probs(p)), shape=(int(n),)))


@dataclasses.dataclass(frozen=True)
class MultivariateNormal(Family):
    """MultivariateNormal(mean, cov) in ``d`` dimensions; observations are rows of ``x``.
    ``cov`` is estimated as its lower triangle (``np.tril_indices(d)`` order, d(d+1)/2
    values); :meth:`covariance` rebuilds the matrix."""

    d: int = 2
    scaling: ClassVar[dict] = {"mean": 1, "cov": 2}

    def __post_init__(self):
        if isinstance(self.d, bool) or not isinstance(self.d, (int, np.integer)) or self.d < 1:
            raise ValueError(f"d={self.d!r} must be an integer >= 1.")

    def covariance(self, params):
        """The ``d x d`` covariance matrix from its lower triangle ``params["cov"]``."""
        i, j = np.tril_indices(self.d)
        c = jnp.zeros((self.d, self.d), params["cov"].dtype).at[i, j].set(params["cov"])
        return c + jnp.tril(c, -1).T

    def check(self, x, name="x", support=None, owner=None):
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"{name} has shape {x.shape}; MultivariateNormal(d={self.d}) needs rows of {self.d} values.")

    def sample(self, key, p, n):
        return jax.random.multivariate_normal(key, p["mean"], self.covariance(p), (int(n),), jnp.result_type(float))

    def logpdf(self, p, x):
        return stats.multivariate_normal.logpdf(x, p["mean"], self.covariance(p))

    def mle(self, x, w):
        m = _wmean(x, w)
        r = x - m
        c = (w[:, None] * r).T @ r / jnp.sum(w)
        return {"mean": m, "cov": c[np.tril_indices(self.d)]}

    def fisher(self, p):  # order: cov (lower triangle), mean
        d = self.d
        prec = jnp.linalg.inv(self.covariance(p))
        i, j = np.tril_indices(d)
        dup = np.zeros((d * d, len(i)))  # duplication matrix: vec(S) = D vech(S)
        for col, (a, b) in enumerate(zip(i, j)):
            dup[a * d + b, col] = dup[b * d + a, col] = 1.0
        i_cov = 0.5 * dup.T @ jnp.kron(prec, prec) @ dup
        top = jnp.concatenate([i_cov, jnp.zeros((len(i), d))], axis=1)
        bottom = jnp.concatenate([jnp.zeros((d, len(i))), prec], axis=1)
        return jnp.concatenate([top, bottom])


def _rewrap(template, values):
    """``values`` (natural scale, a dict like ``template``) in ``template``'s markers:
    the same transforms and bounds; a ``Fixed`` leaf keeps its template value."""

    def one(t, v):
        if isinstance(t, Fixed):
            return t
        if isinstance(t, Positive):
            return Positive(v)
        if isinstance(t, Bounded):
            return Bounded(t.low, t.high, v)
        return v

    return {k: one(t, values[k]) for k, t in template.items()}


def _template_values(template):
    """The natural starting values inside a marker template (Bounded without a value:
    its midpoint)."""

    def one(t):
        if not is_marker(t):
            return _float(t)
        if isinstance(t, Bounded) and t.value is None:
            return _float((t.low + t.high) / 2)
        return _float(t.value)

    return {k: one(t) for k, t in template.items()}


@dataclasses.dataclass(frozen=True, eq=False)
class Custom(Family):
    """A family from a log-density and one set of starting values with constraint
    markers: the user-written family that :func:`fit_dist`, ``mj.Mixture`` and an
    ``mj.fit`` log-likelihood (``family.loglik``) all take from one definition.

    Args:
        logpdf: ``logpdf(params, x) -> (n,)``, the log-density of each observation.
        params: a dict of starting values whose leaves may be wrapped in
            ``mj.Positive``, ``mj.Bounded`` or ``mj.Fixed``.
        start: optional ``start(x, w) -> params`` (natural scale, weighted by ``w``);
            without it every fit (and every mixture component) starts at ``params``.
        sample: optional ``sample(key, params, n) -> (n, ...)`` draws.

    Examples:
        >>> import jax.numpy as jnp, mlejax as mj
        >>> def logpdf(p, x):   # a Gumbel density
        ...     z = (x - p["loc"]) / p["scale"]
        ...     return -jnp.log(p["scale"]) - z - jnp.exp(-z)
        >>> gumbel = mj.dist.Custom(logpdf, {"loc": 0.0, "scale": mj.Positive(1.0)})
        >>> x = jnp.array([0.3, 1.2, -0.4, 2.5, 0.9, 0.1, 1.7, 0.6])
        >>> bool(mj.fit_dist(gumbel, x).converged)
        True
        >>> res = mj.fit(gumbel.loglik, gumbel.params, x)   # the same model through mj.fit
    """

    logpdf_fn: Any = None
    params: Any = None
    start_fn: Any = None
    sample_fn: Any = None

    def __init__(self, logpdf, params, start=None, sample=None):
        if not callable(logpdf):
            raise TypeError(f"logpdf must be a function logpdf(params, x) -> (n,); got {logpdf!r}.")
        if not isinstance(params, dict) or not params:
            raise ValueError(
                "params must be a dict of one component's starting values, e.g. "
                "{'loc': 0.0, 'scale': mj.Positive(1.0)}."
            )
        for name, fn in (("start", start), ("sample", sample)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function or None; got {fn!r}.")
        object.__setattr__(self, "logpdf_fn", logpdf)
        object.__setattr__(self, "params", dict(params))
        object.__setattr__(self, "start_fn", start)
        object.__setattr__(self, "sample_fn", sample)

    def _key(self):
        return (id(self.logpdf_fn), id(self.start_fn), id(self.sample_fn))

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Custom) and self._key() == other._key()

    @property
    def closed_form(self) -> bool:
        return False

    def logpdf(self, params, x):
        return self.logpdf_fn(params, x)

    def start(self, x, w):
        if self.start_fn is not None:
            return self.start_fn(x, w)
        return _template_values(self.params)

    def init(self, params):
        return _rewrap(self.params, params)

    def template(self, x):
        return self.params

    def sample(self, key, params, n):
        if self.sample_fn is None:
            raise NotImplementedError(
                "sampling needs the family's sampler: give mj.dist.Custom(..., sample=fn) with "
                "fn(key, params, n) -> n draws."
            )
        return self.sample_fn(key, params, n)


@dataclasses.dataclass(frozen=True)
class Renamed(Family):
    """A family with its parameters renamed (``names``: old name -> new name); the
    density is the base family's. ``mj.mixture.Normal()`` is ``Normal`` with
    ``loc``/``scale``, ``mj.mixture.Bernoulli()`` is ``Bernoulli`` with ``probs``."""

    base: Family = None
    names: tuple = ()  # ((old, new), ...): hashable

    def _new(self, p):
        m = dict(self.names)
        return {m.get(k, k): v for k, v in p.items()} if p is not None else None

    def _old(self, p):
        m = {v: k for k, v in self.names}
        return {m.get(k, k): v for k, v in p.items()}

    @property
    def support(self):  # noqa: D401  (the base family's)
        return self.base.support

    @property
    def constraints(self):
        return self._new(self.base.constraints)

    @property
    def scaling(self):
        return self._new(self.base.scaling)

    @property
    def closed_form(self) -> bool:
        return self.base.closed_form

    def logpdf(self, params, x):
        return self.base.logpdf(self._old(params), x)

    def start(self, x, w):
        return self._new(self.base.start(x, w))

    def mle(self, x, w):
        return self._new(self.base.mle(x, w))

    def sample(self, key, params, n):
        return self.base.sample(key, self._old(params), n)

    def prepare(self, x):
        return self.base.prepare(x)

    def check(self, x, name="x", support=None, owner=None):
        self.base.check(x, name, support, owner)


FAMILIES = (
    Bernoulli, Binomial, Categorical, Multinomial, Normal, Poisson, Exponential, Gamma, Beta,
    Weibull, LogNormal, StudentT, NegativeBinomial, Geometric, Laplace, MultivariateNormal,
)


@cached
def _family_loglik(family: Family):
    """The weighted log-likelihood of ``family``: one function object per family, so
    refits with new data reuse the compiled fit."""

    def loglik(params, data):
        x, w = data
        return family.loglik(params, x, w)

    return loglik


def _mle_or_start(family, x, w):
    """``(closed, start)``: the family's closed-form MLE (None without one) and the
    fit's start (the closed form where there is one)."""
    closed = family.mle(x, w)
    return closed, (closed if closed is not None else family.start(x, w))


@cached
def _start_program(family: Family):
    """:func:`_mle_or_start` compiled as one program per family (run eagerly, each of
    its array operations would compile a small program of its own on a first call)."""
    return jit(functools.partial(_mle_or_start, family))


_HOST_ONLY = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
              jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


def _closed_form_or_start(family, x, w):
    """:func:`_mle_or_start`, compiled where the family's code can be traced (a user's
    family whose ``start`` needs concrete values runs eagerly)."""
    try:
        return _start_program(family)(x, w)
    except (TypeError, *_HOST_ONLY):  # TypeError: a family that cannot be hashed, or a start that is not arrays
        return _mle_or_start(family, x, w)


def _as_family(family) -> Family:
    if isinstance(family, type) and issubclass(family, Family):
        family = family()
    if not isinstance(family, Family):
        raise TypeError(
            f"family must be an mlejax.dist family such as mj.dist.Normal() or "
            f"mj.dist.Binomial(n=10); got {family!r}."
        )
    return family


def fit_dist(family, x, weights=None, *, cov="observed", method="newton", maxiter=None, tol=None,
             log_prior=None):
    """Fit a distribution family to ``x`` by maximum likelihood.

    Args:
        family: a family from :mod:`mlejax.dist`, e.g. ``mj.dist.Gamma()``,
            ``mj.dist.Binomial(n=10)`` (a family class without arguments also works).
        x: the observations (rows for ``Multinomial``/``MultivariateNormal``).
        weights: optional frequency weights, one per observation (``>= 0``).
        cov: ``"observed"`` (inverse observed information, default), ``"expected"``
            (inverse expected information at the estimate, for families that give it)
            or any other ``mj.fit`` covariance type.
        method, maxiter, tol: passed to ``mj.fit``.
        log_prior: a log-prior for the MAP estimate (e.g. ``mj.priors.beta(2, 2)`` for
            a Bernoulli ``p``: the posterior mode); see :mod:`mlejax.priors`.

    Returns:
        A :class:`FitResult`. Families with a closed-form MLE (Normal, LogNormal,
        Poisson, Exponential, Bernoulli, Binomial, Geometric, Categorical, Multinomial,
        MultivariateNormal, Laplace) are exact: the fit starts at the closed form and
        Newton only certifies it. The others (Gamma, Beta, Weibull, StudentT,
        NegativeBinomial) start at moment estimates and use Newton. Laplace reports
        expected-information standard errors (its log-likelihood is not twice
        differentiable in ``loc``).
        Data of extreme magnitude (beyond 1e38 or below 1e-38 in float64) for a
        family whose parameters scale with the data (Normal, Exponential, Gamma,
        Weibull, Laplace, StudentT, MultivariateNormal; ``Family.scaling``) are
        fitted divided by a power of two, which is exact, and mapped back (estimates,
        standard errors, covariance, information, log-likelihood); ``grad_norm`` and
        ``tol`` are then on the rescaled problem. Other continuous families refuse
        data beyond the fourth root of the largest float (1e77).

    Raises:
        ValueError naming ``x``/``weights`` for data outside the family's support,
        NaN/inf, or weights that are negative or of the wrong length.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> res = mj.fit_dist(mj.dist.Poisson(), np.array([2, 3, 1, 4, 0, 2]))
        >>> round(float(res.params["rate"]), 6), round(float(res.stderr["rate"]), 6)   # mean, sqrt(mean/n)
        (2.0, 0.57735)
    """
    family = _as_family(family)
    x = check_finite_array("x", x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"x has shape {x.shape}; give at least one observation.")
    if x.ndim > 1 and not isinstance(family, (Multinomial, MultivariateNormal)):
        raise ValueError(
            f"x has shape {x.shape}, but {type(family).__name__} takes one value per observation: "
            "give a 1-d array (fit each column separately, or use MultivariateNormal / "
            "Multinomial for rows of several values)."
        )
    family.check(x)
    n = x.shape[0]
    w = check_weights(weights, n)
    dtype = jnp.result_type(float)
    e = None if log_prior is not None else data_scale(family, x, dtype)  # a prior is in x's units
    if e is None:
        _check_magnitude(family, x, dtype)
    # converted on the host: jnp's conversions would each compile a program on a first call
    xj = family.prepare(jnp.asarray(np.asarray(x if e is None else scale_data(x, e), dtype)))
    wj = jnp.asarray(np.ones(n, dtype) if w is None else np.asarray(w, dtype))
    closed, start = _closed_form_or_start(family, xj, wj)
    expected = cov == "expected" or (family.information == "expected" and log_prior is None)
    if expected and cov not in ("observed", "expected"):
        raise ValueError(f"cov={cov!r}: {type(family).__name__} gives expected-information "
                         "standard errors only; use cov='expected'.")
    _check_start(family, start)
    kw = dict(method=method, maxiter=maxiter, tol=tol, nobs=n)
    if expected and family.information == "expected":
        kw["maxiter"] = 0  # exact closed form; the observed Hessian is not usable
    ll = _family_loglik(family)
    res = quiet_fit(fit, ll, family.init(start), (xj, wj), cov="observed" if expected else cov,
                    log_prior=log_prior, **kw)
    if expected:
        fisher = family.fisher(res.params)
        if fisher is None:
            raise ValueError(f"cov='expected': {type(family).__name__} has no closed-form expected "
                             "information; use cov='observed'.")
        status = Status.SUCCESS if family.information == "expected" else None
        res = with_information_jit(res, jnp.sum(wj) * fisher, converged_status=status)
    if e is not None:
        res = unscale_result(res, family, ll, e, float(jnp.sum(wj)) * math.prod(x.shape[1:]))
    warn_result(res, stacklevel=2)
    return res


def _check_magnitude(family, x, dtype):
    """Refuse continuous data so large or so small (beyond the fourth root of the largest
    number of ``dtype``, 1e77 in float64) that the powers of their scale in the
    log-likelihood's derivatives overflow or underflow: the derivatives would be inf/NaN
    or rounded away, so the fit and its standard errors would be wrong. The error says
    how to rescale and map back. Used only where ``fit_dist`` does not rescale the data
    itself (``_scale.data_scale``: a family without ``scaling``, a MAP fit, or data whose
    mapped-back covariance would overflow)."""
    if family.support in DISCRETE_SUPPORTS or getattr(family, "log_data", False):
        return
    big = float(np.max(np.abs(np.asarray(x, np.float64))))
    hi = float(np.finfo(dtype).max) ** 0.25
    if big > hi or 0 < big < 1.0 / hi:
        c = big
        raise ValueError(
            f"x has values of magnitude {c:.3g}: at that scale the derivatives of the log-likelihood "
            f"(powers of the scale) {'overflow' if big > 1 else 'underflow'} {np.dtype(dtype).name}, "
            f"so the fit and its standard errors would be wrong. Rescale the data, e.g. fit x / {c:.0e} and "
            f"multiply the location and scale parameters and their standard errors by {c:.0e} "
            f"(rates: divide; the log-likelihood shifts by -n * log({c:.0e}))."
        )


def _check_start(family, start):
    """Refuse data for which the MLE is on the boundary or does not exist (all equal)."""
    for k, v in start.items():
        v = np.asarray(v)
        kind = family.constraints.get(k)
        inside = np.isfinite(v) & ((v > 0) if kind else True) & ((v < 1) if kind == "unit" else True)
        if not np.all(inside):
            raise ValueError(
                f"x: the estimate of {type(family).__name__}'s {k!r} would be {v}, on the boundary "
                "of (or outside) the parameter space: the data are degenerate for this family "
                "(e.g. all observations equal, all 0 or all 1). The MLE does not exist as an "
                "interior point; check the data or choose another family."
            )


__all__ = ["fit_dist", "Family", "Custom", "Renamed", *[f.__name__ for f in FAMILIES]]
