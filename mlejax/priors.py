"""Ready-made log-priors for MAP estimation: ``mj.fit(..., log_prior=prior)``.

MAP is the bridge from maximum likelihood to Bayesian estimation: maximising
``loglik(params, data) + log_prior(params)`` gives the posterior mode, and the
curvature there (``cov``, ``stderr``) is the Laplace approximation to the
posterior. A Gaussian prior is a ridge (L2) penalty, a Laplace prior a lasso (L1)
one; a conjugate prior gives the closed-form posterior mode. The reported
``loglik`` is the data log-likelihood alone (``aic``/``bic`` use it).

Each prior applies to one leaf of ``params`` (``on="beta"``) or to all of them
(``on=None``). Build a prior once and reuse it: the compiled fit is cached on the
prior object, and the same arguments return the same object.

    ridge = mj.priors.normal(scale=2.0, on="beta")
    res = mj.glm(y, X, "logit", log_prior=ridge)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy import stats

from ._jit import register_cache


@dataclasses.dataclass(frozen=True, eq=False)
class Prior:
    """``log_prior(params)``: the sum of ``logpdf`` over the selected leaf's elements.
    Elements whose scale is ``inf`` are flat (unpenalised, e.g. an intercept)."""

    kind: str
    args: tuple
    on: Any = None

    def _leaves(self, params):
        if self.on is None:
            return jax.tree_util.tree_leaves(params)
        if self.on not in params:
            raise KeyError(f"prior on={self.on!r}: params has no leaf {self.on!r}; its keys are {list(params)}.")
        return jax.tree_util.tree_leaves(params[self.on])

    def logpdf(self, x):
        a, b = (jnp.asarray(v, x.dtype) for v in self.args)
        if self.kind == "normal":  # args: loc, scale
            lp = stats.norm.logpdf(x, a, jnp.where(jnp.isinf(b), 1.0, b))
            return jnp.where(jnp.isinf(b), 0.0, lp)
        if self.kind == "laplace":  # args: loc, scale
            lp = stats.laplace.logpdf(x, a, jnp.where(jnp.isinf(b), 1.0, b))
            return jnp.where(jnp.isinf(b), 0.0, lp)
        if self.kind == "beta":  # args: a, b
            return stats.beta.logpdf(x, a, b)
        if self.kind == "gamma":  # args: shape, rate
            return stats.gamma.logpdf(x, a, scale=1.0 / b)
        raise AssertionError(self.kind)

    def __call__(self, params):
        return sum(jnp.sum(self.logpdf(x)) for x in self._leaves(params))


@functools.lru_cache(maxsize=256)
def _prior(kind, args, on):
    return Prior(kind, args, on)


register_cache(_prior.cache_clear)


def _hashable(v):
    if isinstance(v, (int, float)):
        return float(v)
    return tuple(float(x) for x in jnp.ravel(jnp.asarray(v)).tolist()) if jnp.ndim(v) else float(v)


def _make(kind, a, b, on):
    try:
        return _prior(kind, (_hashable(a), _hashable(b)), on)
    except TypeError:  # traced or unhashable arguments: a fresh prior (recompiles)
        return Prior(kind, (a, b), on)


def normal(scale, loc=0.0, *, on=None) -> Prior:
    """Gaussian prior N(loc, scale^2) on each element: a ridge penalty
    ``sum((x - loc)^2) / (2 scale^2)``. ``scale`` may be an array (``inf``: flat)."""
    return _make("normal", loc, scale, on)


def laplace(scale, loc=0.0, *, on=None) -> Prior:
    """Laplace prior on each element: a lasso penalty ``sum|x - loc| / scale``. Its kink
    at ``loc`` makes the MAP non-smooth there; Newton handles estimates away from it."""
    return _make("laplace", loc, scale, on)


def beta(a, b, *, on=None) -> Prior:
    """Beta(a, b) prior for probabilities (conjugate to Bernoulli/Binomial)."""
    return _make("beta", a, b, on)


def gamma(shape, rate, *, on=None) -> Prior:
    """Gamma(shape, rate) prior for positive parameters (conjugate to the Poisson and
    exponential rates)."""
    return _make("gamma", shape, rate, on)


__all__ = ["Prior", "normal", "laplace", "beta", "gamma"]
