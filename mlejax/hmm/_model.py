"""``mj.HMM`` and ``mj.GaussianHMM``: hidden Markov models fitted by Baum-Welch.

The model plugs into the EM loop of the mixtures (:func:`mlejax.mixture._em.em_loop`):
``e_step`` runs forward-backward over all sequences at once (padded, masked) and
returns the expected counts; ``m_step`` updates the initial distribution, the
transition rows and the emissions in closed form (or by Newton steps for emission
families without one). The loop's tolerance is hmmlearn's rule on the TOTAL
log-likelihood (``|delta loglik| < tol``); ``n_init`` restarts run under ``vmap``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import default_float_dtype
from .._jit import jit
from .._progress import interval, reporter, reporting
from .._status import Status
from ..dist._families import Family
from ..mixture._em import best_run, check_em_options, em_loop
from ..mixture._gmm import COVARIANCE_TYPES
from ..mixture._kmeans import initial_resp
from . import _forward
from ._batch import em_batch_hmm
from ._data import as_sequences, to_device
from ._emissions import FamilyEmission, Gaussian, GaussianMix
from ._result import HMMOutput, build_hmm_result

EMPTY_MASS = 1e-6  # a state whose expected number of visits is below this received no mass
DEFAULT_TOL = 1e-2  # hmmlearn's default, on the total log-likelihood
FIXABLE = ("startprob", "transmat", "emission")
ALGORITHMS = ("sequential", "parallel")


class HMMData(NamedTuple):
    x: Any  # (N, T, ...) padded observations
    mask: Any  # (N, T) real time steps
    observed: Any  # (N, T) real and not missing
    emis: Any  # the emission's prepared data over the flattened (N * T) steps
    total: Any  # 1: the tolerance applies to the total log-likelihood (hmmlearn)
    nobs: Any  # number of real time steps


class HMMState(NamedTuple):
    startprob: Any
    transmat: Any
    emis: Any
    empty: Any  # (K,) bool: the state received no mass in some iteration (kept its parameters)


class HMMRun(NamedTuple):
    """One Baum-Welch run (one restart)."""

    params: Any
    loglik: Any
    n_iter: Any
    status: Any
    decreased: Any
    empty: Any


class HMMStats(NamedTuple):
    start: Any
    trans: Any
    emis: Any
    mass: Any  # (K,) expected number of visits of each state


def _check_prob(name, p, shape, dtype):
    p = np.asarray(p, np.float64)
    if p.shape != shape:
        raise ValueError(f"init[{name!r}] has shape {p.shape}; it needs {shape}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"init[{name!r}] must be finite and non-negative probabilities.")
    sums = p.sum(-1)
    if np.any(np.abs(sums - 1.0) > 1e-6):
        what = "each row of the transition matrix" if p.ndim == 2 else "the initial distribution"
        raise ValueError(
            f"init[{name!r}] is not stochastic: {what} must sum to 1 (sums {np.round(sums, 8).tolist()}); "
            f"divide by the sum (p / p.sum({-1}, keepdims=True))."
        )
    return jnp.asarray(p, dtype)


@dataclasses.dataclass(frozen=True)
class HMM:
    """A hidden Markov model with ``n_states`` states and one emission family,
    fitted by Baum-Welch with :func:`mlejax.em`.

    Args:
        emission: a :mod:`mlejax.dist` family instance (``mj.dist.Poisson()``,
            ``mj.dist.Categorical(k)``, ``mj.dist.Normal()``, ``mj.dist.Gamma()``, a
            user subclass of ``mj.dist.Family``...), whose parameters are stacked over
            states; the M-step is the family's weighted closed-form MLE, or Newton
            steps when it has none. ``mj.GaussianHMM`` builds Gaussian emissions.
        n_states: number of hidden states K >= 1.
        startprob_prior, transmat_prior: Dirichlet concentrations (scalar, (K,) and
            (K, K)) of the initial distribution and of the transition rows; 1 (the
            default) is maximum likelihood, above 1 MAP-EM (hmmlearn's priors).
        fixed: parameters held at their initial values: any of ``"startprob"``,
            ``"transmat"``, ``"emission"`` (they get no standard error).
        algorithm: ``"sequential"`` (``lax.scan`` over time) or ``"parallel"``
            (``lax.associative_scan``: O(log T) depth, for long sequences on GPU).
        newton_steps: Newton steps per M-step for families without a closed form.

    ``params`` of the result (hmmlearn's vocabulary): ``startprob`` (K,), ``transmat``
    (K, K) and the emission's parameters stacked over states.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> x = np.r_[np.random.default_rng(0).poisson(2, 60), np.random.default_rng(1).poisson(9, 60)]
        >>> res = mj.em(mj.HMM(mj.dist.Poisson(), 2), x, stderr=False)
        >>> sorted(np.round(np.asarray(res.params["rate"]), 0).tolist())
        [2.0, 9.0]
    """

    emission: Any
    n_states: int
    startprob_prior: Any = 1.0
    transmat_prior: Any = 1.0
    fixed: tuple = ()
    algorithm: str = "sequential"
    newton_steps: int = 20

    def __post_init__(self):
        k = _check_n("n_states", self.n_states, "hidden states")
        e = self.emission
        if isinstance(e, type):
            raise TypeError(f"emission is the class {e.__name__}; pass an instance, e.g. {e.__name__}().")
        if isinstance(e, Family):
            object.__setattr__(self, "emission", FamilyEmission(e, int(k), self.newton_steps))
        elif not isinstance(e, (FamilyEmission, Gaussian, GaussianMix)):
            raise TypeError(
                f"emission has type {type(e).__name__}; use an mj.dist family (e.g. mj.dist.Poisson()) "
                "or mj.GaussianHMM / mj.GMMHMM for Gaussian (mixture) emissions."
            )
        fixed = (self.fixed,) if isinstance(self.fixed, str) else tuple(self.fixed)
        bad = [f for f in fixed if f not in FIXABLE]
        if bad:
            raise ValueError(f"fixed={bad} is not known; use names among {FIXABLE}.")
        object.__setattr__(self, "fixed", fixed)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm={self.algorithm!r} is not known; use one of {ALGORITHMS}.")

    @property
    def n_components(self):
        return self.n_states

    # -- static/dynamic split ---------------------------------------------------------------
    def static(self):
        return dataclasses.replace(self, emission=self.emission.static(), startprob_prior=None, transmat_prior=None)

    def hyper(self):
        dt = default_float_dtype()
        k = self.n_states
        reg = getattr(self.emission, "reg_covar", 0.0)
        return {
            "reg_covar": jnp.asarray(0.0 if reg is None else reg, dt),
            "startprob_prior": jnp.broadcast_to(jnp.asarray(self.startprob_prior, dt), (k,)),
            "transmat_prior": jnp.broadcast_to(jnp.asarray(self.transmat_prior, dt), (k, k)),
        }

    def with_hyper(self, h):
        return dataclasses.replace(self, emission=self.emission.with_reg(h["reg_covar"]),
                                   startprob_prior=h["startprob_prior"], transmat_prior=h["transmat_prior"])

    # -- data and starting values (host) -----------------------------------------------------
    def sequences(self, data, lengths=None, missing="error"):
        seq = as_sequences(data, lengths, self.emission.event_ndim, missing)
        self.emission.validate(seq.x[seq.observed])
        return seq

    def validate_init(self, params, x):
        if not isinstance(params, dict):
            raise ValueError(f"init must be a dict like the result's params; got {type(params).__name__}.")
        names = {"startprob", "transmat", *self.emission.names()}
        if set(params) != names:
            raise ValueError(f"init must be a dict with keys {sorted(names)}; got {sorted(params)}.")
        k = self.n_states
        out = {"startprob": _check_prob("startprob", params["startprob"], (k,), x.dtype),
               "transmat": _check_prob("transmat", params["transmat"], (k, k), x.dtype)}
        out.update(self.emission.validate_init({n: params[n] for n in self.emission.names()}, x))
        return out

    def nparams(self, x):
        k = self.n_states
        n = 0 if "startprob" in self.fixed else k - 1
        n += 0 if "transmat" in self.fixed else k * (k - 1)
        d = x.shape[-1] if self.emission.event_ndim else 1
        return n + (0 if "emission" in self.fixed else self.emission.nparams(d))

    # -- the EM pieces ---------------------------------------------------------------------
    def prepare(self, x, mask, observed):
        n, t = mask.shape
        flat = x.reshape((n * t,) + x.shape[2:])
        w = observed.reshape(-1).astype(default_float_dtype())
        return HMMData(x, mask, observed, self.emission.prepare(flat, w), jnp.ones((), w.dtype),
                       jnp.sum(mask).astype(w.dtype))

    def _logb(self, state, data):
        n, t = data.mask.shape
        lb = self.emission.log_prob(state.emis, data.emis).reshape(n, t, self.n_states)
        return jnp.where(data.observed[..., None], lb, 0.0)

    def e_step(self, state, data):
        post = _forward.posterior(state.startprob, state.transmat, self._logb(state, data), data.mask,
                                  self.algorithm == "parallel")
        k = self.n_states
        resp = post.gamma.reshape(-1, k)
        resp_w = resp * data.emis.w[:, None]
        stats = HMMStats(post.start, post.trans, self.emission.stats(state.emis, resp_w, data.emis), jnp.sum(resp, 0))
        return stats, jnp.sum(jnp.where(data.mask[:, 0], post.loglik, 0.0))  # all-padding sequences: nothing

    def m_step(self, state, stats, data):
        a0 = jnp.maximum(stats.start + self.startprob_prior - 1.0, 0.0)
        startprob = a0 / jnp.sum(a0)
        a = jnp.maximum(stats.trans + self.transmat_prior - 1.0, 0.0)
        rows = jnp.sum(a, 1, keepdims=True)
        transmat = jnp.where(rows > 0, a / jnp.where(rows > 0, rows, 1.0), state.transmat)
        empty = stats.mass < EMPTY_MASS
        emis = self.emission.m_step(state.emis, stats.emis, data.emis, empty)
        if "startprob" in self.fixed:
            startprob = state.startprob
        if "transmat" in self.fixed:
            transmat = state.transmat
        if "emission" in self.fixed:
            emis = state.emis
        return HMMState(startprob, transmat, emis, state.empty | empty)

    def is_valid(self, state):
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(state)]))

    def init_state(self, resp, data):
        """The starting state from initial responsibilities (n, K) of the flattened steps
        (:meth:`initial_resp`): emissions from the softened responsibilities, uniform
        start and transition probabilities."""
        k = self.n_states
        w = data.emis.w
        r = (0.9 * resp + 0.1 / k) * w[:, None]
        emis = self.emission.init(r, data.emis)
        uniform = jnp.full((k,), 1.0 / k, w.dtype)
        return HMMState(uniform, jnp.full((k, k), 1.0 / k, w.dtype), emis, jnp.zeros((k,), bool))

    def initial_resp(self, key, data, init_method, n_init):
        """The restarts' starting responsibilities of the flattened steps, (n_init, N*T,
        K): k-means (or random) on the observed steps; missing ones weigh nothing."""
        return initial_resp(key, self.emission.kmeans_features(data.emis), data.emis.w, self.n_states, n_init,
                            init_method)

    def state_from_params(self, params, data):
        eparams = {n: params[n] for n in self.emission.names()}
        k = self.n_states
        return HMMState(params["startprob"], params["transmat"], self.emission.state(eparams, data.emis),
                        jnp.zeros((k,), bool))

    def params_from_state(self, state, data):
        return {"startprob": state.startprob, "transmat": state.transmat, **self.emission.params(state.emis, data.emis)}

    # -- the fitted model's densities ----------------------------------------------------------
    def log_emission(self, params, x, observed):
        """``log p(x_t | state)`` (N, T, K) from natural params (0 where not observed)."""
        n, t = observed.shape
        flat = x.reshape((n * t,) + x.shape[2:])
        eparams = {k: params[k] for k in self.emission.names()}
        if isinstance(self.emission, FamilyEmission):
            flat = self.emission.family.prepare(flat)
        lb = self.emission.log_prob_params(eparams, flat).reshape(n, t, self.n_states)
        return jnp.where(observed[..., None], lb, 0.0)

    def loglik(self, params, x, mask, observed):
        """Log-likelihood of each sequence (N,)."""
        lb = self.log_emission(params, x, observed)
        ll = _forward.loglik(params["startprob"], params["transmat"], lb, mask)
        return jnp.where(mask[:, 0], ll, 0.0)  # an all-padding sequence (chunking) counts for nothing

    def log_prior(self, params):
        """The Dirichlet log-prior kernels (0 at the default concentrations of 1)."""
        a0 = self.startprob_prior - 1.0
        a = self.transmat_prior - 1.0
        return jnp.sum(jax.scipy.special.xlogy(a0, params["startprob"])) + jnp.sum(
            jax.scipy.special.xlogy(a, params["transmat"]))

    # -- the fit ----------------------------------------------------------------------------------
    def pure(self, *args, **kwargs):
        """:func:`hmm_pure` with this model."""
        return hmm_pure(self, *args, **kwargs)

    def fit_em_batch(self, data, *, key=None, n_init=1, maxiter=1000, tol=None, init_method="kmeans",
                     batch_size=None, lengths=None, missing="error", stderr=False):
        """What :func:`mlejax.em_batch` runs for an HMM (see there)."""
        tol = DEFAULT_TOL if tol is None else tol
        n_init, maxiter, tol = check_em_options(self, n_init, maxiter, tol, init_method)
        return em_batch_hmm(self, data, key=key, n_init=n_init, maxiter=maxiter, tol=tol, init_method=init_method,
                            batch_size=batch_size, lengths=lengths, missing=missing, stderr=stderr)

    def fit_em(self, data, *, key=None, n_init=1, maxiter=1000, tol=None, init=None, weights=None,
               init_method="kmeans", stderr=None, progress=None, lengths=None, missing="error"):
        """What :func:`mlejax.em` runs for an HMM (see there)."""
        if weights is not None:
            raise ValueError("weights= is not supported for hidden Markov models; repeat sequences instead.")
        tol = DEFAULT_TOL if tol is None else tol
        n_init, maxiter, tol = check_em_options(self, n_init, maxiter, tol, init_method)
        seq = self.sequences(data, lengths, missing)
        x, mask, observed = to_device(seq)
        if init is not None:
            if n_init != 1:
                raise ValueError("init= gives one starting point; use n_init=1 with it (restarts need random inits).")
            init = self.validate_init(init, x)
        elif int(np.sum(seq.observed)) < self.n_states:
            raise ValueError(f"n_states={self.n_states} is more than the number of observations; use fewer states.")
        if key is None:
            key = jax.random.key(0)
        rep = reporter(progress)
        with reporting(rep, maxiter, "Baum-Welch"):
            out = _hmm_jit(self.static(), self.hyper(), x, mask, observed, key, init, jnp.asarray(tol, x.dtype),
                           jnp.asarray(maxiter, jnp.int32), init_method, n_init, interval(rep, maxiter) if rep else 0)
        if stderr is None:
            stderr = self.nparams(x) <= 2000
        return build_hmm_result(self, out, seq, tol=tol, stderr=bool(stderr))


def hmm_pure(model, x, mask, observed, key, init_params, tol, maxiter, *, init_method="kmeans", n_init=1,
             progress_every=0):
    """The whole Baum-Welch fit as a pure function (jit- and vmap-able): the best of
    ``n_init`` restarts (vmapped) by final log-likelihood, a dict of arrays."""
    data = model.prepare(x, mask, observed)
    resp_init = None if init_params is not None else model.initial_resp(key, data, init_method, n_init)

    def one(resp):
        if init_params is not None:
            state0 = model.state_from_params(init_params, data)
        else:
            state0 = model.init_state(resp, data)
        c = em_loop(model, state0, data, tol, maxiter, None, progress_every)
        params = model.params_from_state(c.state, data)
        ll = _forward.loglik(c.state.startprob, c.state.transmat, model._logb(c.state, data), mask)
        ll = jnp.sum(jnp.where(mask[:, 0], ll, 0.0))
        return HMMRun(params, ll, c.n_iter, c.status, c.decreased, c.state.empty)

    if n_init == 1 or init_params is not None:
        runs = jax.tree_util.tree_map(lambda a: a[None], one(None if resp_init is None else resp_init[0]))
    else:
        runs = jax.vmap(one)(resp_init)
    best = best_run(runs)
    return HMMOutput(*best, restart_logliks=runs.loglik, converged=best.status == int(Status.SUCCESS), nobs=data.nobs)


_hmm_jit = jit(
    lambda static, hyper, x, mask, observed, key, init, tol, maxiter, init_method, n_init, every: hmm_pure(
        static.with_hyper(hyper), x, mask, observed, key, init, tol, maxiter, init_method=init_method, n_init=n_init,
        progress_every=every,
    ),
    static_argnums=(0, 9, 10, 11),
)


def GaussianHMM(n_states, covariance_type="full", *, reg_covar=1e-6, **options) -> HMM:
    """An HMM with multivariate Gaussian emissions (hmmlearn's ``GaussianHMM``).

    Args:
        n_states: number of hidden states K >= 1.
        covariance_type: ``"full"`` ``(K, d, d)``, ``"diag"`` ``(K, d)``, ``"spherical"``
            ``(K,)`` or ``"tied"`` ``(d, d)`` -- the shapes of ``mj.GaussianMixture``.
        reg_covar: added to the diagonal of each covariance in every M-step (>= 0; 0 is
            the plain MLE, as hmmlearn with ``covars_prior=0``).
        **options: ``startprob_prior``, ``transmat_prior``, ``fixed``, ``algorithm``
            (see :class:`HMM`).

    ``params``: ``startprob``, ``transmat``, ``means`` (K, d), ``covariances``.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> rng = np.random.default_rng(0)
        >>> x = np.r_[rng.normal(-3, 1, 100), rng.normal(3, 1, 100)]
        >>> res = mj.em(mj.GaussianHMM(2, "diag"), x, stderr=False)
        >>> sorted(np.round(np.asarray(res.params["means"][:, 0]), 0).tolist())
        [-3.0, 3.0]
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type={covariance_type!r} is not known; use one of {COVARIANCE_TYPES}.")
    k = _check_n("n_states", n_states, "hidden states")
    return HMM(Gaussian(k, covariance_type, reg_covar), k, **options)


def _check_n(name, v, what):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}={v!r} must be an integer >= 1 (the number of {what}).")
    return int(v)


def GMMHMM(n_states, n_mix, covariance_type="diag", *, reg_covar=1e-6, **options) -> HMM:
    """An HMM whose emission in each state is a mixture of ``n_mix`` Gaussians
    (hmmlearn's ``GMMHMM``, with the exact M-step).

    Args:
        n_states: number of hidden states K >= 1.
        n_mix: Gaussian components per state M >= 1.
        covariance_type: ``"diag"`` ``(K, M, d)``, ``"full"`` ``(K, M, d, d)``,
            ``"spherical"`` ``(K, M)`` or ``"tied"`` ``(K, d, d)`` (one matrix shared by
            a state's components) -- hmmlearn's shapes.
        reg_covar: added to the diagonal of each covariance in every M-step (>= 0).
        **options: ``startprob_prior``, ``transmat_prior``, ``fixed``, ``algorithm``
            (see :class:`HMM`).

    Returns:
        An :class:`HMM` to fit with :func:`mlejax.em` or :func:`mlejax.em_batch`; the
        result's ``params``: ``startprob``, ``transmat``, ``weights`` (K, M), ``means``
        (K, M, d), ``covariances``. A component that receives no mass keeps its parameters.

    Raises:
        ValueError: ``n_states`` or ``n_mix`` below 1 or not an integer, an unknown
            ``covariance_type``.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> rng = np.random.default_rng(0)
        >>> x = np.r_[rng.normal(-4, 1, 150), rng.normal(4, 1, 150)]
        >>> res = mj.em(mj.GMMHMM(2, 2), x, stderr=False)
        >>> res.params["weights"].shape, res.params["means"].shape
        ((2, 2), (2, 2, 1))
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type={covariance_type!r} is not known; use one of {COVARIANCE_TYPES}.")
    k = _check_n("n_states", n_states, "hidden states")
    m = _check_n("n_mix", n_mix, "Gaussian components per state")
    return HMM(GaussianMix(k, m, covariance_type, reg_covar), k, **options)
