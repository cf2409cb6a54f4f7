"""Mixtures of any component family: ``mj.Mixture``, and the Poisson, Bernoulli and
exponential mixtures.

A component family is a log-density ``logpdf(params, x) -> (n,)`` of one
component (``params`` a pytree, ``x`` all observations) with a starting-value
template whose leaves may carry constraint markers (``mj.Positive``,
``mj.Bounded``, ``mj.Fixed``). The M-step maximises each component's weighted
log-likelihood ``sum_i r_ik log p(x_i | theta_k)``: in closed form where the family
has one, otherwise by a few warm-started Newton steps of mlejax's own driver
(:func:`mlejax._driver.minimise`) on the unconstrained scale -- a generalised EM
whose Newton steps only accept increases, so the log-likelihood never falls.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlog1py, xlogy

from .._constraints import (
    FIXED,
    Bounded,
    Positive,
    default_float_dtype,
    parametrize,
)
from .._fit import _ById
from ..solvers._driver import minimise
from ..solvers._solvers import Newton, Objective
from ._gmm import validate_weights

_TINY = 1e-300


# -- built-in component families -----------------------------------------------------


def _wsum(r, x):
    """Weighted sums r^T x for x (n,) or (n, d): (K,) or (K, d)."""
    return r.T @ x


def _check_numeric(x, name):
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"data contain NaN or inf; remove or impute those rows ({name} mixture).")


@dataclasses.dataclass(frozen=True)
class Poisson:
    """Poisson counts; parameter ``rate`` > 0. Closed-form M-step."""

    closed_form = True

    def template(self, x):
        return {"rate": Positive(1.0)}

    def validate(self, x):
        xn = np.asarray(x)
        _check_numeric(xn, "Poisson")
        if xn.ndim != 1 or np.any(xn < 0) or np.any(xn != np.round(xn)):
            raise ValueError("Poisson mixture data must be a 1-d array of non-negative integer counts.")

    def logpdf(self, p, x):
        return xlogy(x, p["rate"]) - p["rate"] - gammaln(x + 1.0)

    def mle(self, x, r, nk):
        return {"rate": _wsum(r, x) / nk}

    def sample(self, key, p, n):
        return jax.random.poisson(key, p["rate"], (n,)).astype(default_float_dtype())


@dataclasses.dataclass(frozen=True)
class Exponential:
    """Exponential durations; parameter ``rate`` > 0. Closed-form M-step."""

    closed_form = True

    def template(self, x):
        return {"rate": Positive(1.0)}

    def validate(self, x):
        xn = np.asarray(x)
        _check_numeric(xn, "exponential")
        if xn.ndim != 1 or np.any(xn < 0):
            raise ValueError("exponential mixture data must be a 1-d array of non-negative values.")

    def logpdf(self, p, x):
        return jnp.log(p["rate"]) - p["rate"] * x

    def mle(self, x, r, nk):
        return {"rate": nk / _wsum(r, x)}

    def sample(self, key, p, n):
        return jax.random.exponential(key, (n,), default_float_dtype()) / p["rate"]


@dataclasses.dataclass(frozen=True)
class Bernoulli:
    """Multivariate binary data (n, d), independent given the component; parameter
    ``probs`` (d,) in (0, 1). Closed-form M-step."""

    closed_form = True

    def template(self, x):
        return {"probs": Bounded(0.0, 1.0, jnp.full(x.shape[1:], 0.5))}

    def validate(self, x):
        xn = np.asarray(x)
        _check_numeric(xn, "Bernoulli")
        if xn.ndim != 2 or not np.all((xn == 0) | (xn == 1)):
            raise ValueError("Bernoulli mixture data must be an (n, d) array of 0/1 values.")

    def logpdf(self, p, x):
        return jnp.sum(xlogy(x, p["probs"]) + xlog1py(1.0 - x, -p["probs"]), axis=-1)

    def mle(self, x, r, nk):
        return {"probs": jnp.clip(_wsum(r, x) / nk[:, None], 0.0, 1.0)}

    def sample(self, key, p, n):
        return jax.random.bernoulli(key, p["probs"], (n,) + p["probs"].shape).astype(default_float_dtype())


@dataclasses.dataclass(frozen=True)
class Normal:
    """Univariate normal; ``loc`` and ``scale`` > 0. Closed-form M-step."""

    closed_form = True

    def template(self, x):
        return {"loc": 0.0, "scale": Positive(1.0)}

    def validate(self, x):
        _check_numeric(x, "normal")
        if np.ndim(x) != 1:
            raise ValueError("Normal mixture data must be 1-d; use mj.GaussianMixture for vectors.")

    def logpdf(self, p, x):
        return jax.scipy.stats.norm.logpdf(x, p["loc"], p["scale"])

    def mle(self, x, r, nk):
        loc = _wsum(r, x) / nk
        var = jnp.sum(r * (x[:, None] - loc[None]) ** 2, 0) / nk
        return {"loc": loc, "scale": jnp.sqrt(var)}

    def sample(self, key, p, n):
        return p["loc"] + p["scale"] * jax.random.normal(key, (n,), default_float_dtype())


@dataclasses.dataclass(frozen=True)
class Weibull:
    """Weibull(shape k > 0, scale lam > 0) for positive data; Newton M-step."""

    closed_form = False

    def template(self, x):
        return {"shape": Positive(1.0), "scale": Positive(1.0)}

    def validate(self, x):
        xn = np.asarray(x)
        _check_numeric(xn, "Weibull")
        if xn.ndim != 1 or np.any(xn <= 0):
            raise ValueError("Weibull mixture data must be a 1-d array of strictly positive values.")

    def start(self, x, r, nk):
        return {"shape": jnp.ones_like(nk) * 1.5, "scale": _wsum(r, x) / nk}

    def logpdf(self, p, x):
        k, lam = p["shape"], p["scale"]
        z = x / lam
        return jnp.log(k) - jnp.log(lam) + (k - 1.0) * jnp.log(z) - z**k

    def sample(self, key, p, n):
        return p["scale"] * jax.random.weibull_min(key, 1.0, p["shape"], (n,), default_float_dtype())


@dataclasses.dataclass(frozen=True)
class StudentT:
    """Student's t with ``df`` > 0, ``loc``, ``scale`` > 0; Newton M-step."""

    closed_form = False

    def template(self, x):
        return {"df": Positive(5.0), "loc": 0.0, "scale": Positive(1.0)}

    def validate(self, x):
        _check_numeric(x, "Student-t")
        if np.ndim(x) != 1:
            raise ValueError("Student-t mixture data must be 1-d.")

    def start(self, x, r, nk):
        loc = _wsum(r, x) / nk
        var = jnp.sum(r * (x[:, None] - loc[None]) ** 2, 0) / nk
        return {"df": jnp.full_like(nk, 5.0), "loc": loc, "scale": jnp.sqrt(var * 3.0 / 5.0)}

    def logpdf(self, p, x):
        return jax.scipy.stats.t.logpdf(x, p["df"], p["loc"], p["scale"])

    def sample(self, key, p, n):
        return p["loc"] + p["scale"] * jax.random.t(key, p["df"], (n,), default_float_dtype())


class _UserFamily:
    """A user-written component log-density with its own starting values/markers."""

    closed_form = False

    def __init__(self, logpdf, params):
        self.fn = logpdf
        self.params = params

    def __hash__(self):
        return hash(self.fn)

    def __eq__(self, other):
        return isinstance(other, _UserFamily) and other.fn == self.fn

    def template(self, x):
        return self.params

    def validate(self, x):
        _check_numeric(x, "user")

    def logpdf(self, p, x):
        return self.fn(p, x)

    def sample(self, key, p, n):
        raise NotImplementedError(
            "sampling needs the component family's sampler; a user-written log-density has none. "
            "Draw component labels from params['weights'] and sample the components yourself."
        )


# -- the generic mixture --------------------------------------------------------------


class MixData(NamedTuple):
    x_orig: Any
    w: Any
    total: Any
    feats: Any  # standardised (n, f) features for the k-means initialisation


class MixState(NamedTuple):
    weights: Any
    comps: Any  # natural-scale component parameters, each leaf with a leading K axis


@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
    """A mixture of ``n_components`` components of one family, fitted by :func:`mlejax.em`.

    Args:
        component: a built-in family (``mj.mixture.Poisson()``, ``Exponential()``,
            ``Bernoulli()``, ``Normal()``, ``Weibull()``, ``StudentT()``) or a
            function ``logpdf(params, x) -> (n,)``: the log-density of each
            observation under ONE component with parameters ``params``.
        n_components: number of components K >= 1.
        params: for a user ``logpdf``: one component's starting values, a dict whose
            leaves may be wrapped in ``mj.Positive`` / ``mj.Bounded`` / ``mj.Fixed``
            (a fixed value is shared by all components). All components start here
            and are separated by the initial responsibilities.
        newton_steps: the most Newton steps per M-step for families without a closed
            form (each M-step stops earlier once Newton converges; rejected steps
            that raise the damping count too).

    ``params`` of the result: ``{"weights": (K,), <leaf>: (K, ...)}`` for each leaf
    of the component's parameters.
    """

    component: Any
    n_components: int
    params: Any = None
    newton_steps: int = 20
    _spec: Any = None  # static, set by bind(x)
    _dyn: Any = None  # dynamic (bounds, fixed values), set by bind(x)

    def __post_init__(self):
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_components={k!r} must be an integer >= 1 (the number of mixture components).")
        s = self.newton_steps
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"newton_steps={s!r} must be an integer >= 1.")
        c = self.component
        if callable(c) and not hasattr(c, "logpdf"):
            if self.params is None:
                raise ValueError(
                    "a user-written component log-density needs params=, one component's starting "
                    "values, e.g. {'shape': mj.Positive(1.0), 'scale': mj.Positive(1.0)}."
                )
            if not isinstance(self.params, dict) or "weights" in self.params:
                raise ValueError("params must be a dict of the component's parameters (not named 'weights').")
            object.__setattr__(self, "component", _UserFamily(_ById(c), self.params))
        elif not hasattr(c, "logpdf"):
            raise TypeError(
                f"component has type {type(c).__name__}; give a family such as mj.mixture.Weibull() or "
                "a function logpdf(params, x) -> (n,) with params=."
            )

    def _key(self):
        return (type(self), self.component, self.n_components, self.newton_steps, self._spec)

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Mixture) and self._key() == other._key()

    # -- static/dynamic split -----------------------------------------------------------
    def bind(self, x):
        """Resolve the component's parametrisation for data ``x`` (host side)."""
        template = self.component.template(x)
        if not isinstance(template, dict):
            raise ValueError("the component's parameters must be a dict of named leaves.")
        spec, dyn = parametrize(template)
        bound = dataclasses.replace(self, _spec=spec, _dyn=dyn)
        if isinstance(self.component, _UserFamily):
            out = jax.eval_shape(self.component.logpdf, bound._template_params(), x)
            if getattr(out, "shape", None) != (x.shape[0],):
                raise TypeError(
                    f"the component logpdf(params, x) must return one log-density per observation, "
                    f"shape ({x.shape[0]},); it returned {getattr(out, 'shape', type(out).__name__)}."
                )
            if not jnp.issubdtype(out.dtype, jnp.floating):
                raise TypeError(
                    f"the component logpdf(params, x) must return floating-point log-densities; it "
                    f"returned dtype {out.dtype} (integer log-densities cannot be differentiated: "
                    "compute them in floating point, e.g. x.astype(float))."
                )
        return bound

    def _template_params(self):
        return self._spec.to_natural(self._spec.to_unconstrained(self._dyn), self._dyn)

    def static(self):
        return dataclasses.replace(self, _dyn=None)

    def hyper(self):
        return self._dyn

    def with_hyper(self, h):
        return dataclasses.replace(self, _dyn=h)

    def with_components(self, k):
        return dataclasses.replace(self, n_components=k)

    # -- host-side validation -----------------------------------------------------------
    def validate_data(self, data):
        from ._gmm import _as_data

        x = _as_data(data)
        self.component.validate(x)
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"data has shape {x.shape}; give one observation per row.")
        return x

    def validate_init(self, params, x):
        k = self.n_components
        spec = self._spec
        names = set(spec.leaf_names)
        if not isinstance(params, dict) or set(params) != names | {"weights"}:
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(f"init must be a dict with keys {sorted(names | {'weights'})}; got {got}.")
        out = {"weights": validate_weights(params["weights"], k, x.dtype)}
        for name, shape, kind, lo, hi in zip(spec.leaf_names, spec.shapes, spec.kinds, self._dyn.lows, self._dyn.highs):
            v = jnp.asarray(params[name], x.dtype)
            if v.shape != (k,) + shape:
                raise ValueError(f"init[{name!r}] has shape {v.shape}; it needs {(k,) + shape} (one per component).")
            vn = np.asarray(v)
            if not np.all(np.isfinite(vn)):
                raise ValueError(f"init[{name!r}] must be finite.")
            if kind in ("lower", "interval") and np.any(vn <= np.asarray(lo)):
                raise ValueError(f"init[{name!r}] = {vn} is not strictly above its lower bound {np.asarray(lo)}.")
            if kind in ("upper", "interval") and np.any(vn >= np.asarray(hi)):
                raise ValueError(f"init[{name!r}] = {vn} is not strictly below its upper bound {np.asarray(hi)}.")
            out[name] = v
        return out

    # -- parameter maps ------------------------------------------------------------------
    def _to_u(self, comp):
        """One component's natural params (dict) -> unconstrained flat vector."""
        leaves = self._spec.treedef.flatten_up_to(comp)
        return self._spec.to_unconstrained(self._dyn._replace(values=tuple(leaves)))

    def _to_nat(self, u):
        return self._spec.to_natural(u, self._dyn)

    def _comps(self, params):
        return {k: v for k, v in params.items() if k != "weights"}

    # -- the EM pieces ------------------------------------------------------------------
    def prepare(self, x, w):
        total = jnp.sum(w)
        f = x.reshape(x.shape[0], -1)
        mean = (w @ f) / total
        sd = jnp.sqrt((w @ (f - mean) ** 2) / total)
        feats = (f - mean) / jnp.where(sd > 0, sd, 1.0)
        return MixData(x, w, total, feats)

    def kmeans_features(self, data):
        return data.feats

    def _log_comp(self, comps, x):
        return jax.vmap(lambda p: self.component.logpdf(p, x))(comps).T  # (n, K)

    def log_joint(self, params, x):
        return jnp.log(params["weights"]) + self._log_comp(self._comps(params), x)

    def e_step(self, state, data):
        lj = jnp.log(state.weights) + self._log_comp(state.comps, data.x_orig)
        lse = jax.nn.logsumexp(lj, axis=1)
        resp = jnp.exp(lj - lse[:, None]) * data.w[:, None]
        return resp, jnp.sum(data.w * lse)

    def _newton(self, comps, resp, data, steps):
        x = data.x_orig

        def one(u0, r):
            obj = Objective(lambda u: -jnp.sum(r * self.component.logpdf(self._to_nat(u), x)))
            return minimise(Newton(), obj, u0, jnp.asarray(1e-12, u0.dtype), jnp.asarray(steps, jnp.int32)).x

        u = jax.vmap(one)(jax.vmap(self._to_u)(comps), resp.T)
        return jax.vmap(self._to_nat)(u)

    init_in_loop = True  # the initial M-step runs as the EM loop's first pass

    def m_step(self, state, resp, data, first=False):
        eps = 10 * jnp.finfo(resp.dtype).eps
        nk = jnp.sum(resp, 0) + eps
        weights = nk / jnp.sum(nk)
        if self.component.closed_form:
            comps = self.component.mle(data.x_orig, resp, nk)
        else:
            # The initial M-step (from k-means/random responsibilities) may start far
            # from the optimum: it gets more Newton steps.
            steps = jnp.where(first, max(50, self.newton_steps), self.newton_steps)
            comps = self._newton(state.comps, resp, data, steps)
        return MixState(weights, comps)

    def start_from_resp(self, resp, data):
        """A starting state and the weighted responsibilities of the initial M-step."""
        # Soften hard (k-means) assignments: a hard start can put a parameter on its
        # boundary (a Bernoulli probability of exactly 0 or 1), where EM is stuck.
        k = self.n_components
        r = (0.9 * resp + 0.1 / k) * data.w[:, None]
        nk = jnp.sum(r, 0) + 10 * jnp.finfo(r.dtype).eps
        if hasattr(self.component, "start"):
            comps = self.component.start(data.x_orig, r, nk)
        else:
            p0 = self._template_params()
            comps = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, nk.shape + jnp.shape(a)), p0)
        return MixState(nk / jnp.sum(nk), comps), r

    def state_from_params(self, params, data):
        return MixState(params["weights"], self._comps(params))

    def is_valid(self, state):
        leaves = jax.tree_util.tree_leaves(state)
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))

    def params_from_state(self, state, data):
        return {"weights": state.weights, **state.comps}

    def nparams(self, x):
        return self.n_components - 1 + self.n_components * self._spec.nparams

    # -- the unconstrained parametrisation for standard errors ---------------------------
    def to_free(self, params):
        w = params["weights"]
        u = jax.vmap(self._to_u)(self._comps(params))
        return jnp.concatenate([jnp.log(w[:-1]) - jnp.log(w[-1]), u.ravel()])

    def from_free(self, v, like):
        k = self.n_components
        w = jax.nn.softmax(jnp.concatenate([v[: k - 1], jnp.zeros((1,), v.dtype)]))
        comps = jax.vmap(self._to_nat)(v[k - 1 :].reshape(k, -1))
        comps = {n: jnp.broadcast_to(a, like[n].shape) for n, a in comps.items()}
        return {"weights": w, **comps}

    def fixed_mask(self, params):
        fixed = dict(zip(self._spec.leaf_names, (kd == FIXED for kd in self._spec.kinds)))
        return {n: jnp.full(jnp.shape(a), fixed.get(n, False)) for n, a in params.items()}

    def sample(self, key, params, n):
        k1, k2 = jax.random.split(key)
        comp = jax.random.categorical(k1, jnp.log(params["weights"]), shape=(n,))
        keys = jax.random.split(k2, self.n_components)
        draws = jax.vmap(lambda kk, p: self.component.sample(kk, p, n))(keys, self._comps(params))
        return draws[comp, jnp.arange(n)], comp


def PoissonMixture(n_components) -> Mixture:
    """A mixture of Poisson counts (closed-form EM); params ``weights``, ``rate``."""
    return Mixture(Poisson(), n_components)


def ExponentialMixture(n_components) -> Mixture:
    """A mixture of exponentials (closed-form EM); params ``weights``, ``rate``."""
    return Mixture(Exponential(), n_components)


def BernoulliMixture(n_components) -> Mixture:
    """A mixture of independent multivariate Bernoullis (latent class model) for
    (n, d) binary data (closed-form EM); params ``weights``, ``probs`` (K, d)."""
    return Mixture(Bernoulli(), n_components)
