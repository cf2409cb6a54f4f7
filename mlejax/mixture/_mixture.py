"""Mixtures of any :mod:`mlejax.dist` family: ``mj.Mixture``, and the Poisson,
Bernoulli and exponential mixtures.

A component is a distribution family (``mj.dist.Gamma()``, a subclass of
``mj.dist.Family``, or ``mj.dist.Custom(logpdf, params)``: a user's log-density
with starting values whose leaves may carry ``mj.Positive``, ``mj.Bounded`` or
``mj.Fixed``). The M-step maximises each component's weighted log-likelihood
``sum_i r_ik log p(x_i | theta_k)``: by the family's closed form (``mle(x, w)``)
where it has one, otherwise by a few warm-started Newton steps of mlejax's own
driver (:func:`mlejax.solvers._driver.minimise`) on the unconstrained scale of its
constraint markers -- a generalised EM whose Newton steps only accept increases,
so the log-likelihood never falls.

``mj.mixture.Normal``, ``Poisson``, ``Exponential``, ``Bernoulli``, ``Weibull``
and ``StudentT`` are the :mod:`mlejax.dist` families (``Normal`` with its old
parameter names ``loc``/``scale``, ``Bernoulli`` with ``probs``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import FIXED, FREE, parametrize
from ..dist import _families as fam
from ..solvers._driver import minimise
from ..solvers._solvers import Newton, Objective
from ._em import min_spread
from ._gmm import _as_data, validate_weights
from ._kmeans import standardised_features

# -- the mixture components of earlier versions: the dist families --------------------

Poisson = fam.Poisson
Exponential = fam.Exponential
Weibull = fam.Weibull
StudentT = fam.StudentT


@dataclasses.dataclass(frozen=True)
class Normal(fam.Renamed):
    """``mj.dist.Normal`` with the parameter names ``loc`` and ``scale``."""

    base: fam.Family = fam.Normal()
    names: tuple = (("mu", "loc"), ("sigma", "scale"))


@dataclasses.dataclass(frozen=True)
class Bernoulli(fam.Renamed):
    """``mj.dist.Bernoulli`` with the parameter name ``probs``: for (n, d) binary data,
    ``probs`` is (d,) (the coordinates independent given the component)."""

    base: fam.Family = fam.Bernoulli()
    names: tuple = (("p", "probs"),)


def as_family(component, params=None) -> fam.Family:
    """A mixture component (or HMM emission) as a :class:`mlejax.dist.Family`."""
    if isinstance(component, type) and issubclass(component, fam.Family):
        component = component()
    if isinstance(component, fam.Family):
        if params is not None:
            raise ValueError("params= gives the starting values of a user-written logpdf; a family has its own.")
        return component
    if callable(component):
        if params is None:
            raise ValueError(
                "a user-written component log-density needs params=, one component's starting "
                "values, e.g. {'shape': mj.Positive(1.0), 'scale': mj.Positive(1.0)}."
            )
        if not isinstance(params, dict) or "weights" in params:
            raise ValueError("params must be a dict of the component's parameters (not named 'weights').")
        return fam.Custom(component, params)
    raise TypeError(
        f"component has type {type(component).__name__}; give an mlejax.dist family such as "
        "mj.dist.Gamma() or a function logpdf(params, x) -> (n,) with params=."
    )


def _per_obs(lp, n):
    """One log-density per observation: trailing axes (independent coordinates) summed."""
    return lp if lp.ndim == 1 else jnp.sum(lp.reshape(n, -1), axis=1)


# -- the generic mixture --------------------------------------------------------------


class MixData(NamedTuple):
    x_orig: Any  # the data as given
    x: Any  # the data as the family's logpdf takes them (``family.prepare``)
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
        component: any :mod:`mlejax.dist` family (``mj.dist.Gamma()``,
            ``mj.dist.Poisson()``, ``mj.dist.Custom(logpdf, params)``, your own
            subclass of ``mj.dist.Family``), or a function ``logpdf(params, x) -> (n,)``:
            the log-density of each observation under ONE component (with ``params=``).
            A family's log-density that returns one value per coordinate of a row
            (e.g. ``mj.dist.Bernoulli()`` on (n, d) data) is summed over the row.
        n_components: number of components K >= 1.
        params: for a user ``logpdf``: one component's starting values, a dict whose
            leaves may be wrapped in ``mj.Positive`` / ``mj.Bounded`` / ``mj.Fixed``
            (a fixed value is shared by all components). All components start here
            and are separated by the initial responsibilities. Families start each
            component at ``family.start(x, responsibilities)``.
        newton_steps: the most Newton steps per M-step for families without a closed
            form (each M-step stops earlier once Newton converges; rejected steps
            that raise the damping count too).

    ``params`` of the result: ``{"weights": (K,), <leaf>: (K, ...)}`` for each leaf
    of the component's parameters.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.gamma(2.0, 0.5, 300), rng.gamma(20.0, 0.5, 300)])
        >>> res = mj.em(mj.Mixture(mj.dist.Gamma(), 2), x, stderr=False)
        >>> sorted(res.params), bool(res.converged)
        (['rate', 'shape', 'weights'], True)
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
        if not (isinstance(self.component, fam.Custom) and self.params is self.component.params):
            object.__setattr__(self, "component", as_family(self.component, self.params))
            if isinstance(self.component, fam.Custom):
                object.__setattr__(self, "params", self.component.params)

    def _key(self):
        return (type(self), self.component, self.n_components, self.newton_steps, self._spec)

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Mixture) and self._key() == other._key()

    # -- static/dynamic split -----------------------------------------------------------
    def bind(self, x):
        """Resolve the component's parametrisation for data ``x`` (host side)."""
        xp = self.component.prepare(x)
        template = self.component.template(xp)
        if not isinstance(template, dict):
            raise ValueError("the component's parameters must be a dict of named leaves.")
        spec, dyn = parametrize(template)
        bound = dataclasses.replace(self, _spec=spec, _dyn=dyn)
        out = jax.eval_shape(self.component.logpdf, bound._template_params(), xp)
        if getattr(out, "shape", (None,))[:1] != (x.shape[0],):
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
        x = _as_data(data)
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(f"data has shape {x.shape}; give one observation per row.")
        xn = np.asarray(x)
        if not np.all(np.isfinite(xn)):
            raise ValueError("data contain NaN or inf; remove or impute those rows.")
        self.component.check(xn, "data")
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
        return MixData(x, self.component.prepare(x), w, jnp.sum(w), standardised_features(x, w))

    def kmeans_features(self, data):
        return data.feats

    def _logpdf(self, p, x):
        """One component's log-density of each (prepared) observation, (n,)."""
        return _per_obs(self.component.logpdf(p, x), x.shape[0])

    def _log_comp(self, comps, x):
        return jax.vmap(lambda p: self._logpdf(p, x))(comps).T  # (n, K)

    def log_joint(self, params, x):
        """``log w_k + log p_k(x_i)``, (n, K), for the data ``x`` as given."""
        return jnp.log(params["weights"]) + self._log_comp(self._comps(params), self.component.prepare(x))

    def e_step(self, state, data):
        lj = jnp.log(state.weights) + self._log_comp(state.comps, data.x)
        lse = jax.nn.logsumexp(lj, axis=1)
        resp = jnp.exp(lj - lse[:, None]) * data.w[:, None]
        return resp, jnp.sum(data.w * lse)

    def _newton(self, comps, resp, data, steps):
        x = data.x

        def one(u0, r):
            obj = Objective(lambda u: -jnp.sum(r * self._logpdf(self._to_nat(u), x)))
            return minimise(Newton(), obj, u0, jnp.asarray(1e-12, u0.dtype), jnp.asarray(steps, jnp.int32)).x

        u0 = jax.vmap(self._to_u)(comps)  # a start outside the domain restarts at the template
        u0 = jnp.where(jnp.isfinite(u0), u0, self._spec.to_unconstrained(self._dyn)[None])
        u = jax.vmap(one)(u0, resp.T)
        return jax.vmap(self._to_nat)(u)

    init_in_loop = True  # the initial M-step runs as the EM loop's first pass

    def m_step(self, state, resp, data, first=False):
        eps = 10 * jnp.finfo(resp.dtype).eps
        nk = jnp.sum(resp, 0) + eps
        weights = nk / jnp.sum(nk)
        if self.component.closed_form:
            new = jax.vmap(lambda r: self.component.mle(data.x, r))(resp.T)
            # an empty component (no weight) keeps its parameters instead of 0/0
            comps = jax.tree_util.tree_map(
                lambda a, b: jnp.where((nk > eps).reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, state.comps
            )
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
        comps = jax.vmap(lambda rk: self.component.start(data.x, rk))(r.T)
        return MixState(nk / jnp.sum(nk), comps), r

    def state_from_params(self, params, data):
        return MixState(params["weights"], self._comps(params))

    def spread(self, params, log_joint, data):
        """Each component's smallest standardised data variance, (K,) (None for a family
        of discrete data, whose degenerate components sit on a parameter bound instead)."""
        if self.component.support in fam.DISCRETE_SUPPORTS:
            return None
        resp = jax.nn.softmax(log_joint, axis=1) * data.w[:, None]
        return min_spread(resp, data.feats)

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

    def bounds(self):
        """``{leaf: (low, high)}`` of the component parameters' constraints (one
        component's shape; infinite for free and fixed leaves)."""
        out = {}
        for name, kind, lo, hi in zip(self._spec.leaf_names, self._spec.kinds, self._dyn.lows, self._dyn.highs):
            free = kind in (FREE, FIXED)
            out[name] = (np.where(free, -np.inf, np.asarray(lo)), np.where(free, np.inf, np.asarray(hi)))
        return out

    def fixed_mask(self, params):
        fixed = dict(zip(self._spec.leaf_names, (kd == FIXED for kd in self._spec.kinds)))
        return {n: np.full(np.shape(a), fixed.get(n, False)) for n, a in params.items()}

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
