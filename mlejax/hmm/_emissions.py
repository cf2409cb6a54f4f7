"""Emission models of a hidden Markov model: Gaussian (four covariance structures,
from :mod:`mlejax.mixture._gmm`), a Gaussian mixture per state (GMM-HMM) and any
:mod:`mlejax.dist` family.

An emission is a small frozen object over flattened observations ``(M, ...)`` (all
time steps of all sequences; padded ones carry weight 0):

- ``event_ndim``; ``validate(x)`` (host); ``prepare(x, w) -> data``;
- ``stats(state, resp_w, data)``: the sufficient statistics of the M-step from the
  posterior state weights ``resp_w`` ``(M, K)``; ``init(resp_w, data) -> state`` and
  ``m_step(state, stats, data, empty) -> state``; a state in ``empty`` keeps its
  previous parameters;
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
from ..mixture._kmeans import standardised_features
from ..solvers._driver import minimise
from ..solvers._solvers import Newton, Objective

BOUNDARY = 1e-8  # a probability below this is on the boundary of the simplex: no standard error
EMPTY_COMPONENT = 1e-6  # a mixture component with less expected mass than this keeps its parameters


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


class _GaussianBase:
    """What Gaussian and Gaussian-mixture emissions share: ``reg_covar`` is an array
    under jit (no recompiles), and the data shape check."""

    event_ndim = 1

    def kmeans_features(self, data):
        return data.xc  # the centred data

    def static(self):
        return dataclasses.replace(self, reg_covar=None)

    def with_reg(self, r):
        return dataclasses.replace(self, reg_covar=r)

    def validate(self, x):
        if x.ndim != 2:
            raise ValueError(f"each sequence has shape {x.shape[1:]}; Gaussian emissions need (T,) or (T, n_features).")


@dataclasses.dataclass(frozen=True)
class Gaussian(_GaussianBase):
    """Gaussian emissions with scikit-learn's covariance shapes (``covariance_type``)."""

    n_states: int
    covariance_type: str = "full"
    reg_covar: Any = 1e-6

    @property
    def gmm(self):
        return GaussianMixture(self.n_states, self.covariance_type, self.reg_covar)

    def names(self):
        return ("means", "covariances")

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

    def stats(self, state, resp_w, data):
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


# -- a Gaussian mixture per state (GMM-HMM) ------------------------------------------------------


class MixState(NamedTuple):
    weights: Any  # (K, M) mixture weights of each state
    means: Any  # (K, M, d) centred
    covariances: Any  # hmmlearn's GMMHMM shapes
    theta: Any  # (f, K * M) coefficients of log w_km + log N(x | mu_km, Sigma_km) in the features


def _validate_rows(name, p, shape):
    p = np.asarray(p, np.float64)
    if p.shape != shape:
        raise ValueError(f"init[{name!r}] has shape {p.shape}; it needs {shape} (n_states, n_mix).")
    if not np.all(np.isfinite(p)) or np.any(p <= 0) or np.any(np.abs(p.sum(-1) - 1.0) > 1e-6):
        raise ValueError(f"init[{name!r}]: each state's mixture weights must be strictly positive and sum to 1 "
                         f"(row sums {np.round(p.sum(-1), 8).tolist()}); pass w / w.sum(1, keepdims=True).")
    return p


@dataclasses.dataclass(frozen=True)
class GaussianMix(_GaussianBase):
    """A mixture of ``n_mix`` Gaussians per state (hmmlearn's ``GMMHMM``): ``weights``
    (K, M), ``means`` (K, M, d), ``covariances`` (K, M, d, d) full, (K, M, d) diag,
    (K, M) spherical, or (K, d, d) tied (one matrix shared by a state's components).

    The ``K * M`` components are one :class:`~mlejax.mixture.GaussianMixture` (tied
    runs as full with each state's matrix repeated), so the E-step is one matrix
    product and the M-step scikit-learn's closed form on the component posteriors
    ``gamma_tk * w_km N_km(x_t) / b_k(x_t)``."""

    n_states: int
    n_mix: int
    covariance_type: str = "diag"
    reg_covar: Any = 1e-6

    @property
    def _inner(self):
        return "full" if self.covariance_type == "tied" else self.covariance_type

    @property
    def gmm(self):
        return GaussianMixture(self.n_states * self.n_mix, self._inner, self.reg_covar)

    def names(self):
        return ("weights", "means", "covariances")

    def validate_init(self, params, x):
        k, m, d = self.n_states, self.n_mix, x.shape[-1]
        w = _validate_rows("weights", params["weights"], (k, m))
        mu = np.asarray(params["means"], np.float64)
        if mu.shape != (k, m, d):
            raise ValueError(f"init['means'] has shape {mu.shape}; it needs {(k, m, d)} (n_states, n_mix, n_features).")
        cov = np.asarray(params["covariances"], np.float64)
        shape = {"full": (k, m, d, d), "tied": (k, d, d), "diag": (k, m, d), "spherical": (k, m)}[self.covariance_type]
        if cov.shape != shape:
            raise ValueError(f"init['covariances'] has shape {cov.shape}; covariance_type="
                             f"{self.covariance_type!r} needs {shape}.")
        n = k if self.covariance_type == "tied" else k * m
        validate_gmm_init({"weights": np.full(n, 1.0 / n), "means": np.zeros((n, d)),
                           "covariances": cov.reshape((n,) + shape[2 - (self.covariance_type == "tied"):])},
                          n, d, self._inner, x.dtype)
        return {"weights": jnp.asarray(w, x.dtype), "means": jnp.asarray(mu, x.dtype),
                "covariances": jnp.asarray(cov, x.dtype)}

    def prepare(self, x, w):
        return self.gmm.prepare(x, w)

    def _flat(self, weights, means, cov):
        """The K * M components as one GaussianMixture's (weights, means, covariances)."""
        k, m, d = means.shape
        if self.covariance_type == "tied":
            cov = jnp.broadcast_to(cov[:, None], (k, m, d, d))
        return weights.reshape(-1), means.reshape(k * m, d), cov.reshape((k * m,) + cov.shape[2:])

    def _state(self, weights, means_c, cov):
        return MixState(weights, means_c, cov, self.gmm._theta(*self._flat(weights, means_c, cov)))

    def _log_joint(self, state, data):
        """``log w_km + log N(x | mu_km, Sigma_km)``, (n, K, M)."""
        if data.z is not None:
            lp = data.z @ state.theta
        else:
            w, mu, cov = self._flat(state.weights, state.means, state.covariances)
            lp = self.gmm.log_joint({"weights": w, "means": mu, "covariances": cov}, data.xc)
        return lp.reshape(lp.shape[0], self.n_states, self.n_mix)

    def log_prob(self, state, data):
        return jax.nn.logsumexp(self._log_joint(state, data), -1)

    def stats(self, state, resp_w, data):
        post = jax.nn.softmax(self._log_joint(state, data), -1) * resp_w[..., None]
        return self.gmm._stats(post.reshape(post.shape[0], -1), data)

    def init(self, resp_w, data):
        """Each state's Gaussian (from ``resp_w``), its components spread along the
        per-feature standard deviations (-0.5 .. 0.5 sd), equal weights."""
        k, m = self.n_states, self.n_mix
        g = GaussianMixture(k, "diag" if self.covariance_type in ("diag", "spherical") else "full", self.reg_covar)
        s = g.m_step(None, g._stats(resp_w, data), data)
        var = s.covariances if g.covariance_type == "diag" else jnp.diagonal(s.covariances, axis1=1, axis2=2)
        offsets = jnp.linspace(-0.5, 0.5, m) if m > 1 else jnp.zeros((1,))
        means = s.means[:, None, :] + offsets[None, :, None].astype(var.dtype) * jnp.sqrt(var)[:, None, :]
        cov = {"full": lambda: jnp.broadcast_to(s.covariances[:, None], (k, m) + s.covariances.shape[1:]),
               "tied": lambda: s.covariances,
               "diag": lambda: jnp.broadcast_to(var[:, None], (k, m, var.shape[1])),
               "spherical": lambda: jnp.broadcast_to(jnp.mean(var, 1)[:, None], (k, m))}[self.covariance_type]()
        return self._state(jnp.full((k, m), 1.0 / m, var.dtype), means, cov)

    def m_step(self, state, stats, data, empty):
        k, m = self.n_states, self.n_mix
        s = self.gmm.m_step(None, stats, data)
        nk = stats[:, 0].reshape(k, m)
        weights = (nk + 10 * jnp.finfo(nk.dtype).eps) / jnp.sum(nk + 10 * jnp.finfo(nk.dtype).eps, 1, keepdims=True)
        means = s.means.reshape(state.means.shape)
        cov = s.covariances.reshape((k, m) + s.covariances.shape[1:])
        if self.covariance_type == "tied":  # each state's components share one matrix
            share = weights[..., None, None]
            cov = jnp.sum(share * cov, 1)
        lost = empty[:, None] | (nk < EMPTY_COMPONENT)  # a component with no mass keeps its parameters
        means = _keep(lost.reshape(-1), state.means.reshape(k * m, -1), means.reshape(k * m, -1)).reshape(means.shape)
        if self.covariance_type == "tied":
            cov = _keep(empty, state.covariances, cov)
        else:
            cov = _keep(lost.reshape(-1), state.covariances.reshape((k * m,) + cov.shape[2:]),
                        cov.reshape((k * m,) + cov.shape[2:])).reshape(cov.shape)
        weights = _keep(empty, state.weights, weights)
        return self._state(weights, means, cov)

    def params(self, state, data):
        return {"weights": state.weights, "means": state.means + data.shift, "covariances": state.covariances}

    def state(self, params, data):
        return self._state(params["weights"], params["means"] - data.shift, params["covariances"])

    def log_prob_params(self, params, x):
        w, mu, cov = self._flat(params["weights"], params["means"], params["covariances"])
        lp = self.gmm.log_joint({"weights": w, "means": mu, "covariances": cov}, x)
        return jax.nn.logsumexp(lp.reshape(lp.shape[0], self.n_states, self.n_mix), -1)

    def nparams(self, d):
        k, m = self.n_states, self.n_mix
        cov = {"full": k * m * d * (d + 1) // 2, "tied": k * d * (d + 1) // 2, "diag": k * m * d,
               "spherical": k * m}[self.covariance_type]
        return k * (m - 1) + k * m * d + cov

    def _diagonal(self):
        return self.covariance_type in ("diag", "spherical")

    def to_free(self, params):
        u, skip, _ = simplex_to_free(params["weights"])
        rest = jnp.concatenate([params["means"].ravel(), cov_to_free(params["covariances"], self._diagonal())])
        return Free(jnp.concatenate([u.ravel(), rest]), jnp.concatenate([skip.ravel(), jnp.zeros(rest.shape, bool)]))

    def from_free(self, u, like):
        k, m, d = like["means"].shape
        w = simplex_from_free(u[: k * m].reshape(k, m), like["weights"])
        means = u[k * m : k * m + k * m * d].reshape(k, m, d)
        cov = cov_from_free(u[k * m + k * m * d :], like["covariances"].shape, self._diagonal())
        return {"weights": w, "means": means, "covariances": cov}

    def boundary(self, params):
        return {"weights": simplex_to_free(params["weights"])[2], "means": jnp.zeros(params["means"].shape, bool),
                "covariances": jnp.zeros(params["covariances"].shape, bool)}

    def sample(self, key, params, states):
        k1, k2 = jax.random.split(key)
        comp = jax.random.categorical(k1, jnp.log(params["weights"][states]))
        _, mu, cov = self._flat(params["weights"], params["means"], params["covariances"])
        return sample_gaussian(k2, mu, cov, states * self.n_mix + comp, self._diagonal())


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
        return FamData(self.family.prepare(x), x, w, standardised_features(x, w))

    def kmeans_features(self, data):
        return data.feats

    def log_prob_params(self, params, x):
        return jax.vmap(lambda p: self.family.logpdf(p, x))(params).T

    def log_prob(self, state, data):
        return self.log_prob_params(state, data.x)

    def stats(self, state, resp_w, data):
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
