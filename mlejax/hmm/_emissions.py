"""Emission models of a hidden Markov model: Gaussian (four covariance structures,
from :mod:`mlejax.mixture._gmm`) and any :mod:`mlejax.dist` family.

An emission is a small frozen object over flattened observations ``(M, ...)`` (all
time steps of all sequences; padded ones carry weight 0):

- ``event_ndim``; ``validate(x)`` (host); ``prepare(x, w) -> data``;
- ``init(resp_w, data) -> state`` and ``m_step(state, resp_w, data, empty) -> state``
  from the posterior state weights ``resp_w`` ``(M, K)``; a state in ``empty`` keeps
  its previous parameters;
- ``log_prob(state, data) -> (M, K)``; ``params(state, data)`` / ``state(params, data)``;
- ``log_prob_params(params, x) -> (M, K)`` on raw observations (result methods and
  the standard errors); ``nparams(d)``; ``to_free(params) -> (u, skip)`` /
  ``from_free(u, like, skip)``; ``sample(key, params, states)``; ``validate_init``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..dist._families import Categorical, Family, Multinomial
from ..mixture._gmm import (
    GaussianMixture,
    GMMState,
    cov_from_free,
    cov_to_free,
    sample_gaussian,
    validate_gmm_init,
)
from ..solvers._driver import minimise
from ..solvers._solvers import Newton, Objective

BOUNDARY = 1e-8  # a probability below this is on the boundary of the simplex: no standard error


def _keep(empty, old, new):
    """Per state (leading axis K): the old value where the state received no mass."""
    e = empty.reshape(empty.shape + (1,) * (new.ndim - 1))
    return jnp.where(e, old, new)


# -- the simplex, shared by startprob, transmat rows and categorical emissions ------------


def simplex_to_free(p):
    """Probability vectors (..., K) -> log-ratios to the largest entry, the mask of
    coordinates that are not free (the reference entry and entries at 0), and the mask
    of entries on the boundary (0 or 1: no standard error)."""
    ref = jax.nn.one_hot(jnp.argmax(p, -1), p.shape[-1], dtype=bool)
    skip = ref | (p < BOUNDARY)
    logp = jnp.log(jnp.where(skip, 1.0, p))
    lref = jnp.log(jnp.max(p, -1, keepdims=True))
    return jnp.where(skip, 0.0, logp - lref), skip, (p < BOUNDARY) | (p > 1.0 - BOUNDARY)


def simplex_from_free(u, like):
    ref = jax.nn.one_hot(jnp.argmax(like, -1), like.shape[-1], dtype=bool)
    logits = jnp.where(ref, 0.0, jnp.where(like < BOUNDARY, -jnp.inf, u))
    return jax.nn.softmax(logits, -1)


class Free(NamedTuple):
    u: Any  # flat unconstrained vector
    skip: Any  # flat bool: coordinates held fixed (reference, boundary or fixed parameter)


# -- Gaussian ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """Gaussian emissions with scikit-learn's covariance shapes (``covariance_type``)."""

    n_states: int
    covariance_type: str = "full"
    reg_covar: Any = 1e-6
    event_ndim = 1

    @property
    def gmm(self):
        return GaussianMixture(self.n_states, self.covariance_type, self.reg_covar)

    def static(self):
        return dataclasses.replace(self, reg_covar=None)

    def with_reg(self, r):
        return dataclasses.replace(self, reg_covar=r)

    def names(self):
        return ("means", "covariances")

    def validate(self, x):
        if x.ndim != 2:
            raise ValueError(f"each sequence has shape {x.shape[1:]}; Gaussian emissions need (T,) or (T, n_features).")

    def validate_init(self, params, x):
        k = self.n_states
        p = validate_gmm_init({"weights": np.full(k, 1.0 / k), "means": params["means"],
                               "covariances": params["covariances"]}, k, x.shape[-1], self.covariance_type, x.dtype)
        return {"means": p["means"], "covariances": p["covariances"]}

    def prepare(self, x, w):
        return self.gmm.prepare(x, w)

    def _state(self, means_c, cov):
        ones = jnp.ones((self.n_states,), means_c.dtype)
        return GMMState(ones, means_c, cov, self.gmm._theta(ones, means_c, cov))

    def init(self, resp_w, data):
        s = self.gmm.m_step(None, self.gmm._stats(resp_w, data), data)
        return self._state(s.means, s.covariances)

    def stats(self, resp_w, data):
        return self.gmm._stats(resp_w, data)

    def m_step(self, state, stats, data, empty):
        s = self.gmm.m_step(None, stats, data)
        means = _keep(empty, state.means, s.means)
        cov = s.covariances if self.covariance_type == "tied" else _keep(empty, state.covariances, s.covariances)
        return self._state(means, cov)

    def log_prob(self, state, data):
        if data.z is not None:
            return data.z @ state.theta
        return self.log_prob_params({"means": state.means, "covariances": state.covariances}, data.xc)

    def params(self, state, data):
        return {"means": state.means + data.shift, "covariances": state.covariances}

    def state(self, params, data):
        return self._state(params["means"] - data.shift, params["covariances"])

    def log_prob_params(self, params, x):
        ones = jnp.ones((self.n_states,), x.dtype)
        return self.gmm.log_joint({"weights": ones, **params}, x)

    def nparams(self, d):
        return self.gmm.nparams(np.zeros((1, d))) - (self.n_states - 1)

    def to_free(self, params):
        u = jnp.concatenate([params["means"].ravel(), cov_to_free(params["covariances"], self.gmm._diagonal)])
        return Free(u, jnp.zeros(u.shape, bool))

    def from_free(self, u, like):
        k, d = like["means"].shape
        cov = cov_from_free(u[k * d :], like["covariances"].shape, self.gmm._diagonal)
        return {"means": u[: k * d].reshape(k, d), "covariances": cov}

    def boundary(self, params):
        return jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, bool), params)

    def sample(self, key, params, states):
        return sample_gaussian(key, params["means"], params["covariances"], states, self.gmm._diagonal)


# -- any mj.dist family -------------------------------------------------------------------------


class FamData(NamedTuple):
    x: Any  # (M, ...) the observations as the family's logpdf takes them
    raw: Any  # (M, ...) as given
    w: Any  # (M,) weights (0 at padded steps)
    feats: Any  # (M, f) standardised features for the k-means start


def _wrap(kind, v):
    if kind == "positive":
        return jnp.log(v)
    if kind == "unit":
        return jnp.log(v) - jnp.log1p(-v)
    return v


def _unwrap(kind, u):
    if kind == "positive":
        return jnp.exp(u)
    if kind == "unit":
        return jax.nn.sigmoid(u)
    return u


@dataclasses.dataclass(frozen=True)
class FamilyEmission:
    """Emissions from one :mod:`mlejax.dist` family, its parameters stacked over states.
    The M-step is the family's weighted closed-form ``mle(x, w)`` where it has one,
    else ``newton_steps`` Newton steps on the unconstrained scale (generalised EM)."""

    family: Family
    n_states: int
    newton_steps: int = 20

    @property
    def event_ndim(self):
        f = self.family
        return 1 if (isinstance(f, Multinomial) and not isinstance(f, Categorical)) or hasattr(f, "d") else 0

    @property
    def closed_form(self):
        return type(self.family).mle is not Family.mle

    @property
    def _simplex(self):
        return isinstance(self.family, Multinomial)

    def static(self):
        return self

    def with_reg(self, r):
        return self

    def names(self):
        return tuple(sorted(self._template().keys()))

    def _template(self):
        """The shapes of one state's parameters."""
        f = self.family
        event = ((f.k,) if self._simplex else (f.d,)) if self.event_ndim else ()
        return jax.eval_shape(lambda: f.start(f.prepare(jnp.zeros((2,) + event)), jnp.ones(2)))

    def validate(self, x):
        self.family.check(np.asarray(x))

    def validate_init(self, params, x):
        tmpl = self._template()
        out = {}
        for name, leaf in tmpl.items():
            if name not in params:
                raise ValueError(f"init needs the emission parameter {name!r} stacked over states, shape "
                                 f"{(self.n_states,) + leaf.shape}.")
            v = np.asarray(params[name], np.float64)
            if v.shape != (self.n_states,) + leaf.shape:
                raise ValueError(f"init[{name!r}] has shape {v.shape}; it needs {(self.n_states,) + leaf.shape} "
                                 "(one per state).")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"init[{name!r}] must be finite.")
            kind = self.family.constraints.get(name)
            if kind == "positive" and np.any(v <= 0):
                raise ValueError(f"init[{name!r}] must be strictly positive.")
            if kind == "unit" and (np.any(v < 0) or np.any(v > 1)):
                raise ValueError(f"init[{name!r}] must be probabilities in [0, 1].")
            out[name] = jnp.asarray(v, x.dtype)
        return out

    def prepare(self, x, w):
        f = x.reshape(x.shape[0], -1).astype(w.dtype)
        total = jnp.sum(w)
        mean = (w @ f) / total
        sd = jnp.sqrt((w @ (f - mean) ** 2) / total)
        return FamData(self.family.prepare(x), x, w, (f - mean) / jnp.where(sd > 0, sd, 1.0))

    def kmeans_features(self, data):
        return data.feats

    def log_prob_params(self, params, x):
        return jax.vmap(lambda p: self.family.logpdf(p, x))(params).T

    def log_prob(self, state, data):
        return self.log_prob_params(state, data.x)

    def stats(self, resp_w, data):
        return resp_w

    def init(self, resp_w, data):
        return jax.vmap(lambda r: self.family.start(data.x, r), in_axes=1)(resp_w)

    def m_step(self, state, resp_w, data, empty):
        if self.closed_form:
            new = jax.vmap(lambda r: self.family.mle(data.x, r), in_axes=1)(resp_w)
        else:
            new = self._newton(state, resp_w, data)
        return {n: _keep(empty, state[n], new[n]) for n in new}

    def _newton(self, state, resp_w, data):
        def one(p0, r):
            u0 = self._free_one(p0)
            obj = Objective(lambda u: -jnp.sum(r * self.family.logpdf(self._nat_one(u, p0), data.x)))
            u = minimise(Newton(), obj, u0, jnp.asarray(1e-12, u0.dtype), jnp.asarray(self.newton_steps, jnp.int32)).x
            return self._nat_one(u, p0)

        return jax.vmap(one, in_axes=(0, 1))(state, resp_w)

    def _free_one(self, p):
        """Natural parameters (one state's, or stacked) -> the unconstrained vector."""
        return jnp.concatenate([jnp.ravel(_wrap(self.family.constraints.get(n), p[n])) for n in sorted(p)])

    def _nat_one(self, u, like):
        out, i = {}, 0
        for n in sorted(like):
            size = int(np.prod(like[n].shape))
            out[n] = _unwrap(self.family.constraints.get(n), u[i : i + size].reshape(like[n].shape))
            i += size
        return out

    def params(self, state, data):
        return state

    def state(self, params, data):
        return params

    def nparams(self, d):
        return self.n_states * sum(int(np.prod(v.shape)) for v in self._template().values())

    def to_free(self, params):
        if self._simplex:
            probs = jax.vmap(self.family.probs)(params)
            u, skip, _ = simplex_to_free(probs)
            return Free(u.ravel(), skip.ravel())
        u = self._free_one(params)  # leaf by leaf, all states at once
        return Free(u, jnp.zeros(u.shape, bool))

    def from_free(self, u, like):
        if self._simplex:
            probs_like = jax.vmap(self.family.probs)(like)
            probs = simplex_from_free(u.reshape(probs_like.shape), probs_like)
            return {"p": probs[:, :-1]}
        return self._nat_one(u, like)

    def boundary(self, params):
        if self._simplex:
            return {"p": simplex_to_free(jax.vmap(self.family.probs)(params))[2][:, :-1]}
        return jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, bool), params)

    def sample(self, key, params, states):
        """One draw per step from the family's sampler, at that step's state."""
        p = jax.tree_util.tree_map(lambda a: a[states], params)
        keys = jax.random.split(key, states.shape[0])
        return jax.vmap(lambda kk, pp: self.family.sample(kk, pp, 1)[0])(keys, p)
