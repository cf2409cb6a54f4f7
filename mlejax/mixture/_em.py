"""``mj.em``: the one EM driver loop, restarts, validation and the result.

Every mixture model (Gaussian, Poisson, Bernoulli, exponential, any component
family) is a small object with a dynamax-style ``e_step`` (sufficient statistics
and the log-likelihood) and ``m_step`` (new parameters from the statistics);
:func:`em_loop` runs any of them in a single ``lax.while_loop``. A whole fit,
``n_init`` restarts included (``vmap``), is one compiled function of
``(hyperparameters, data, weights, key, init, tol, maxiter)``: a second call with
new numbers of the same shapes does not recompile, and ``jax.vmap`` over
datasets works (:func:`em_pure`).

The model protocol (all pure JAX except the host-side ``validate_*``):

- ``n_components``; ``static()`` (hashable, the jit cache key) and ``hyper()``
  (a pytree of arrays: regularisation, bounds) with ``with_hyper(h)``;
- ``validate_data(x)`` / ``validate_init(params, x)`` on the host;
- ``prepare(x, w) -> data`` once before the loop (features, centring);
- ``kmeans_features(data)``, ``init_from_resp(resp, data) -> state`` (or, with
  ``init_in_loop``, ``start_from_resp -> (state, resp0)``: the initial M-step
  then runs as the loop's first pass, traced once),
  ``state_from_params(params, data) -> state``;
- ``e_step(state, data) -> (stats, loglik)``, ``m_step(state, stats, data) -> state``,
  ``is_valid(state)``;
- ``params_from_state(state, data)``, ``log_joint(params, x) -> (n, K)``
  (``log w_k + log p_k(x_i)``), ``nparams(x)``, ``to_free``/``from_free`` (the
  unconstrained parametrisation used for standard errors), ``sample``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._jit import jit
from .._progress import interval, iteration_hook, reporter, reporting
from .._starts import key_stack
from .._status import ConvergenceWarning, Status
from ._kmeans import initial_resp
from ._result import build_result
from ._stream import em_stream

RUNNING = int(Status.RUNNING)
INIT_METHODS = ("kmeans", "kmeans++", "random")
DEFAULT_MAXITER = 1000
DEFAULT_TOL = 1e-6
MAX_AUTO_STDERR_PARAMS = 2000


class EMCarry(NamedTuple):
    state: Any
    loglik: Any  # log-likelihood at the parameters before the last M-step
    n_iter: Any
    status: Any
    decreased: Any  # the log-likelihood went down between two E-steps (never expected)
    started: Any  # the initial M-step (from resp0) is done


class EMRun(NamedTuple):
    """One EM run (one restart)."""

    params: Any
    loglik: Any
    n_iter: Any
    status: Any
    decreased: Any
    collapsed: Any  # (K,) bool: the component collapsed (:func:`collapsed_components`)
    fingerprint: Any  # log p(x_i) at the first FINGERPRINT_POINTS observations (label-free)


# Restarts reached the same maximum when their fitted densities agree at this many
# observations (a mixture's label switching leaves the density unchanged).
FINGERPRINT_POINTS = 64


class EMOutput(NamedTuple):
    """What the compiled EM returns (:func:`em_pure`): the best restart, and facts
    about all of them and the data."""

    params: Any
    loglik: Any
    n_iter: Any
    status: Any
    decreased: Any
    collapsed: Any
    restart_logliks: Any  # the final log-likelihood of each restart
    converged: Any
    nobs: Any  # the sum of the weights
    finite_data: Any  # False: the data contain NaN/inf
    restart_status: Any = None  # the status of each restart
    restart_fingerprints: Any = None  # (n_init, m): each restart's log-density at m observations


def em_loop(model, state0, data, tol, maxiter, resp0=None, progress_every=0):
    """Run EM from ``state0`` until ``|loglik_t - loglik_{t-1}| < tol * sum(weights)``
    (the change of the mean log-likelihood per observation, as scikit-learn) or
    ``maxiter`` M-steps. ``tol = 0`` runs exactly ``maxiter`` iterations. A step
    whose new parameters are not finite (a collapsed component) is not taken and
    stops the loop with status ``NONFINITE``.

    ``resp0`` (weighted responsibilities, (n, K)) makes the first pass an initial
    M-step from them instead of an E-step (not counted in ``n_iter``), so that a
    model whose M-step is expensive to compile traces it only once.
    ``progress_every`` (static): report ``(n_iter, loglik)`` to the host every that
    many iterations (:mod:`mlejax._progress`); 0 compiles no callback.
    """
    dtype = data.total.dtype
    init = EMCarry(
        state0,
        jnp.asarray(-jnp.inf, dtype),
        jnp.zeros((), jnp.int32),
        jnp.asarray(RUNNING, jnp.int32),
        jnp.zeros((), bool),
        jnp.asarray(resp0 is None),
    )

    def cond(c):
        return c.status == RUNNING

    def body(c):
        stats, ll = model.e_step(c.state, data)
        if resp0 is None:
            first = jnp.zeros((), bool)
            new = model.m_step(c.state, stats, data)
        else:
            first = ~c.started
            stats = jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), resp0, stats)
            ll = jnp.where(first, -jnp.inf, ll)
            new = model.m_step(c.state, stats, data, first=first)
        ok = model.is_valid(new) & (first | jnp.isfinite(ll))
        n = c.n_iter + (ok & ~first).astype(jnp.int32)
        converged = jnp.abs(ll - c.loglik) < tol * data.total
        status = jnp.where(
            ~ok,
            int(Status.NONFINITE),
            jnp.where(converged, int(Status.SUCCESS), jnp.where(n >= maxiter, int(Status.MAX_ITER), RUNNING)),
        ).astype(jnp.int32)
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, c.state)
        slack = monotone_slack(ll, data.total)
        decreased = c.decreased | (ok & (ll < c.loglik - slack))
        iteration_hook(n, ll, progress_every, ok & ~first)
        return EMCarry(state, ll, n, status, decreased, jnp.ones((), bool))

    return lax.while_loop(cond, body, init)


def monotone_slack(ll, total):
    """How far the log-likelihood may fall between two EM iterations by rounding alone:
    a few hundred units of the dtype's epsilon times its size (at least the number of
    observations), so float32 neither raises false alarms nor float64 misses real ones."""
    eps = jnp.finfo(jnp.result_type(ll)).eps
    return 256 * eps * jnp.maximum(jnp.abs(ll), total)


COLLAPSE_EPS = 1e3  # a component's spread below COLLAPSE_EPS * eps of the data's: collapsed


def min_spread(resp, feats):
    """The smallest variance of each component's responsibility-weighted data, (K,):
    ``resp`` (n, K) weighted responsibilities, ``feats`` (n, p) standardised data. It is
    0 when the component's mass sits on at most p distinct points (a lower-dimensional
    subset); computed in two passes (centred), so rounding does not hide a collapse."""
    nk = jnp.sum(resp, 0)
    means = (resp.T @ feats) / nk[:, None]

    def one(rm):
        r, m = rm
        f = feats - m
        c = (f * r[:, None]).T @ f / jnp.sum(r)
        return jnp.linalg.eigvalsh(c)[0]

    return lax.map(one, (resp.T, means))


def collapsed_components(model, params, log_joint, data):
    """(K,) bool: components whose spread (``model.spread``: the smallest variance of the
    component relative to the data's, unregularised) fell below ``COLLAPSE_EPS`` units of
    the dtype's epsilon -- a component on a single point or a lower-dimensional subset,
    where the likelihood of a continuous family is unbounded. Families of discrete data
    (``model.spread`` returns None) cannot collapse; their degenerate components sit on
    the boundary of the parameter space instead (see ``_result.boundary_flags``)."""
    # a density that is +inf or NaN at some point has collapsed already
    blown = jnp.any(jnp.isnan(log_joint) | (log_joint == jnp.inf), axis=0)
    lj = jnp.where(blown[None, :], -jnp.inf, log_joint)
    spread = model.spread(params, lj, data)
    if spread is None:
        return jnp.zeros((model.n_components,), bool)
    return blown | (spread < COLLAPSE_EPS * jnp.finfo(spread.dtype).eps)


def em_pure(model, x, w, key, init_params, tol, maxiter, *, init_method="kmeans", n_init=1, progress_every=0,
            stacked_init=False):
    """The whole EM fit as a pure function (jit- and vmap-able).

    ``model`` is a model object (a ``mj.Mixture`` bound to the data's shape first:
    ``model.bind(x)``), possibly carrying traced hyperparameters
    (``model.with_hyper``); ``x`` the data (validated by the caller), ``w`` the
    weights (ones for none); ``init_params`` a params pytree or None;
    ``tol``/``maxiter`` arrays. Example, many datasets at once::

        fit = lambda x: em_pure(gm, x, jnp.ones(x.shape[0]), key, None, tol, maxiter)
        out = jax.jit(jax.vmap(fit))(xs)   # xs: (B, n, d)


    Returns an :class:`EMOutput` for the best of ``n_init`` restarts (vmapped) by
    final log-likelihood; restarts whose components collapsed rank last.
    ``stacked_init`` (static): ``init_params`` holds ``n_init`` starts stacked along a
    leading axis, one per restart.
    """
    if w is None:
        w = jnp.ones((x.shape[0],), x.dtype)
    data = model.prepare(x, w)
    resp_init = None if init_params is not None else initial_resp(  # the restarts' starts, (n_init, n, K)
        key, model.kmeans_features(data), data.w, model.n_components, n_init, init_method)

    def one(start, resp):
        resp0 = None
        if start is not None:
            state0 = model.state_from_params(start, data)
        elif getattr(model, "init_in_loop", False):
            state0, resp0 = model.start_from_resp(resp, data)
        else:
            state0 = model.init_from_resp(resp, data)
        c = em_loop(model, state0, data, tol, maxiter, resp0, progress_every)
        params = model.params_from_state(c.state, data)
        lj = model.log_joint(params, data.x_orig)
        logdens = jax.nn.logsumexp(lj, axis=1)
        ll = jnp.sum(data.w * logdens)
        collapsed = collapsed_components(model, params, lj, data) & jnp.all(jnp.isfinite(x))  # NaN data: own status
        status = jnp.where(jnp.any(collapsed), int(Status.UNBOUNDED), c.status).astype(jnp.int32)
        return EMRun(params, ll, c.n_iter, status, c.decreased, collapsed, logdens[:FINGERPRINT_POINTS])

    if stacked_init:
        runs = jax.vmap(lambda s: one(s, None))(init_params)
    elif init_params is not None:
        runs = jax.tree_util.tree_map(lambda a: a[None], one(init_params, None))
    elif n_init == 1:  # no batch axis of one inside the loop
        runs = jax.tree_util.tree_map(lambda a: a[None], one(None, resp_init[0]))
    else:
        runs = jax.vmap(lambda r: one(None, r))(resp_init)
    best = best_run(runs)
    return EMOutput(
        params=best.params, loglik=best.loglik, n_iter=best.n_iter, status=best.status,
        decreased=best.decreased, collapsed=best.collapsed,
        restart_logliks=runs.loglik,
        converged=best.status == int(Status.SUCCESS),
        nobs=data.total,
        finite_data=jnp.all(jnp.isfinite(x)),
        restart_status=runs.status,
        restart_fingerprints=runs.fingerprint,
    )


def best_run(runs):
    """The restart with the highest final log-likelihood (a NamedTuple with ``loglik``
    and ``status`` and a leading restart axis -> one run); collapsed restarts (status
    NONFINITE or UNBOUNDED) rank last."""
    bad = (runs.status == int(Status.NONFINITE)) | (runs.status == int(Status.UNBOUNDED))
    rank = jnp.where(~bad & jnp.isfinite(runs.loglik), runs.loglik, -jnp.inf)
    rank = jnp.where(jnp.all(jnp.isinf(rank)), jnp.where(jnp.isnan(runs.loglik), -jnp.inf, runs.loglik), rank)
    return jax.tree_util.tree_map(lambda a: a[jnp.argmax(rank)], runs)


_em_jit = jit(
    lambda static, hyper, x, w, key, init_params, tol, maxiter, init_method, n_init, progress_every, stacked: em_pure(
        static.with_hyper(hyper), x, w, key, init_params, tol, maxiter, init_method=init_method, n_init=n_init,
        progress_every=progress_every, stacked_init=stacked,
    ),
    static_argnums=(0, 8, 9, 10, 11),
)


# -- host-side validation ------------------------------------------------------------


def check_int(name, value, minimum, fix):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}; {fix}.")
    return int(value)


def check_nonneg_float(name, value, fix):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number; {fix}.") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}={value!r} must be a finite number >= 0; {fix}.")
    return v


def check_weights(weights, n, dtype):
    if weights is None:
        return None  # ones, made inside the compiled fit
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights has shape {w.shape}; give one non-negative weight per observation, shape ({n},).")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative (frequency weights).")
    if not np.any(w > 0):
        raise ValueError("weights are all zero; at least one observation needs a positive weight.")
    return jnp.asarray(w, dtype)


def _check_components_vs_points(x, w, k):
    """Refuse fewer observations than components; warn (and return True) when there are
    fewer distinct points than components."""
    if w is not None:
        keep = np.asarray(w) > 0
        n = int(np.sum(keep))
    else:
        keep, n = None, x.shape[0]
    if n < k:
        raise ValueError(
            f"n_components={k} is more than the number of observations ({n}); use at most "
            f"{n} components (fewer for a meaningful fit) or add data."
        )
    # Cheap first (and no copy of a large device array to the host): if a prefix
    # already has k distinct rows, the whole data set does.
    if keep is None and n_distinct(np.asarray(x[: 50 * k])) >= k:
        return False
    xs = np.asarray(x)
    distinct = n_distinct(xs if keep is None else xs[keep])
    if distinct < k:
        warnings.warn(
            f"only {distinct} distinct data points for n_components={k}: some components will be "
            "empty or duplicated and the fit is not identified. Use fewer components.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return distinct < k


def n_distinct(x) -> int:
    """The number of distinct rows of ``x`` (n, ...) among its finite rows (host side)."""
    rows = np.asarray(x).reshape(x.shape[0], -1)
    return int(np.unique(rows[np.all(np.isfinite(rows), axis=1)], axis=0).shape[0])


def mark_too_few(status, few):
    """Status ``NOT_IDENTIFIED`` for a fit that ended normally on data with fewer distinct
    points than components (some components empty or duplicated: FAULTS row 24)."""
    normal = (status == int(Status.SUCCESS)) | (status == int(Status.MAX_ITER))
    return jnp.where(few & normal, int(Status.NOT_IDENTIFIED), status).astype(jnp.int32)


def check_em_options(model, n_init, maxiter, tol, init_method):
    """The options ``em`` and ``em_batch`` share, validated: ``(n_init, maxiter, tol)``."""
    if not hasattr(model, "e_step"):
        raise TypeError(
            f"model has type {type(model).__name__}; use mj.GaussianMixture, mj.PoissonMixture, "
            "mj.BernoulliMixture, mj.ExponentialMixture or mj.Mixture."
        )
    n_init = check_int("n_init", n_init, 1, "use n_init=1 or more restarts")
    maxiter = check_int("maxiter", maxiter, 1, "EM needs at least one iteration (e.g. maxiter=1000)")
    tol = check_nonneg_float("tol", tol, "use e.g. tol=1e-6, or tol=0 to run exactly maxiter iterations")
    if init_method not in INIT_METHODS:
        raise ValueError(f"init_method={init_method!r} is not known; use one of {INIT_METHODS}.")
    return n_init, maxiter, tol


def _check_key(key):
    """``key`` as a ``jax.random`` key (None: ``jax.random.key(0)``); a plain integer
    is refused with the fix."""
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int, np.integer, float)) or (hasattr(key, "shape") and jnp.shape(key) == ()
                                                     and not jnp.issubdtype(jnp.result_type(key),
                                                                            jax.dtypes.prng_key)):
        raise TypeError(f"key={key!r} is a number; em needs a jax.random key, e.g. key=jax.random.key({key}).")
    return key


def em(model, data, *, key=None, n_init=1, maxiter=DEFAULT_MAXITER, tol=None, init=None,
       weights=None, init_method="kmeans", stderr=None, progress=None, starts=None, **hmm_options):
    """Fit a mixture or a hidden Markov model by expectation-maximisation; returns a
    :class:`MixtureResult` (an :class:`mlejax.HMMResult` for an HMM).

    Args:
        model: ``mj.GaussianMixture(...)``, ``mj.PoissonMixture(k)``,
            ``mj.BernoulliMixture(k)``, ``mj.ExponentialMixture(k)`` or
            ``mj.Mixture(component, k)`` for any component family; or an HMM
            (``mj.HMM(family, n_states)``, ``mj.GaussianHMM(n_states, ...)``).
        data: the observations, shape ``(n, d)`` (or ``(n,)``); for a Gaussian mixture
            also a streamed source (``mj.stream``, chunks of rows): each EM iteration is
            then one pass summing the sufficient statistics over the chunks, starting
            from ``init`` or an in-memory fit of the first chunk. For an HMM: one
            sequence ``(T,)`` / ``(T, d)``, a list of sequences of any lengths, or a
            padded array ``(N, T, ...)`` with ``lengths=``.
        key: a ``jax.random`` key for the random initialisation (default
            ``jax.random.key(0)``: deterministic).
        n_init: restarts from different random initialisations, run in parallel
            (``vmap``); the one with the highest log-likelihood is kept.
        maxiter: the most EM iterations (M-steps), >= 1.
        tol: stop when the log-likelihood changes by less than ``tol`` per unit of
            weight (``|delta loglik| < tol * sum(weights)``, scikit-learn's rule on
            its per-sample mean; default 1e-6). ``tol=0`` runs exactly ``maxiter``
            iterations. For a hidden Markov model (``mj.HMM``, ``mj.GaussianHMM``) the
            rule is hmmlearn's, on the total: ``|delta loglik| < tol`` (default 1e-2).
        init: starting parameters, a pytree shaped like the result's ``params``
            (e.g. ``{"weights", "means", "covariances"}``); validated.
        weights: optional frequency weights, one per observation (a point with
            weight 2 counts as two copies).
        init_method: ``"kmeans"`` (k-means++ seeding and Lloyd iterations; default),
            ``"kmeans++"`` (seeding only) or ``"random"`` (random responsibilities).
        stderr: compute standard errors from the observed information of the
            marginal log-likelihood (an autodiff Hessian after the fit). The
            default ``None`` computes them when the model has at most
            ``MAX_AUTO_STDERR_PARAMS`` (2000) free parameters (the Hessian is
            P x P); ``True`` always, ``False`` never (``res.stderr`` is then None).
        progress: ``True`` shows the iterations and log-likelihood (tqdm if
            installed), about 20 updates per fit; an ``mj.progress.Recorder()``
            records the log-likelihood at every iteration (for
            ``mj.plot.trace``). Off (``False``, or the default ``None`` outside an
            interactive session) the compiled loop has no callback; ``None`` in a
            terminal or notebook shows a bar once the fit has run for 2 s.
            With ``n_init > 1`` (vmapped restarts) the best restart's log-likelihood
            is shown, and the callback runs every iteration.
        starts: a multi-start EM, as ``mj.fit(..., starts=)``: a number (the same as
            ``n_init``: random initialisations by ``init_method``), a stack of
            starting parameters (a pytree like ``init`` with a leading axis, one row
            per start; validated like ``init``), or a function ``key -> init`` run on
            each key of the stack ``key`` (``jax.random.split(key, n)``). All starts
            run vmapped in one compiled call; the best is kept. With more than one
            start (also by ``n_init``), ``res.starts`` summarises the distinct maxima
            (see :class:`MixtureResult`).

    For an HMM, ``**hmm_options`` are ``lengths`` (with a padded array) and
    ``missing`` (``"error"``, the default, refuses NaN; ``"marginalize"`` integrates
    missing observations out).

    The reported ``loglik`` is the total log-likelihood ``sum_i w_i log p(x_i)``
    (scikit-learn's ``score`` is its per-sample mean).

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> x = np.random.default_rng(0).poisson(np.repeat([1.0, 9.0], 200))
        >>> res = mj.em(mj.PoissonMixture(2), x)
        >>> np.round(np.sort(np.asarray(res.params["rate"])), 2).tolist(), bool(res.converged)
        ([1.17, 8.42], True)
    """
    key = _check_key(key)
    if hasattr(model, "fit_em"):  # models with their own data layout (hidden Markov models)
        if starts is not None:
            raise TypeError("starts= is for mixtures; for a hidden Markov model use n_init= (random restarts).")
        return model.fit_em(data, key=key, n_init=n_init, maxiter=maxiter, tol=tol, init=init, weights=weights,
                            init_method=init_method, stderr=stderr, progress=progress, **hmm_options)
    if hmm_options:
        raise TypeError(f"em() got unexpected keyword arguments {sorted(hmm_options)} (lengths= and missing= "
                        "are for hidden Markov models).")
    tol = DEFAULT_TOL if tol is None else tol
    n_init, maxiter, tol = check_em_options(model, n_init, maxiter, tol, init_method)
    if getattr(data, "streamed", False):  # a streamed source (mj.stream): one pass per iteration
        return em_stream(model, data, key=key, n_init=n_init, maxiter=maxiter, tol=tol, init=init,
                         init_method=init_method, stderr=stderr, progress=progress, em_fn=em)
    x = model.validate_data(data)
    if hasattr(model, "bind"):
        model = model.bind(x)
    dtype = x.dtype
    w = check_weights(weights, x.shape[0], dtype)
    few = _check_components_vs_points(x, w, model.n_components)
    stacked = False
    if starts is not None:
        if init is not None or n_init != 1:
            raise ValueError("give either starts= or init=/n_init=, not both (starts= replaces them).")
        if isinstance(starts, (int, np.integer)) and not isinstance(starts, bool):
            n_init = check_int("starts", starts, 1, "use starts=16 (random initialisations, as n_init=16)")
        else:
            init, key = _stacked_inits(model, starts, key, x)
            n_init, stacked = jax.tree_util.tree_leaves(init)[0].shape[0], True
    elif init is not None:
        if n_init != 1:
            raise ValueError("init= gives one starting point; use n_init=1 with it (restarts need random inits).")
        init = model.validate_init(init, x)
    rep = reporter(progress)
    with reporting(rep, maxiter, "EM"):
        out = _em_call(model, x, w, key, init, tol, maxiter, init_method, n_init,
                       interval(rep, maxiter) if rep else 0, stacked)
    if few:
        status = mark_too_few(out.status, True)
        out = out._replace(status=status, converged=status == int(Status.SUCCESS))
    if stderr is None:
        stderr = model.nparams(x) <= MAX_AUTO_STDERR_PARAMS
    return build_result(model, out, x, w, tol=tol, stderr=bool(stderr))


def _stacked_inits(model, starts, key, x):
    """``starts=`` a stack of inits or a function ``key -> init`` (with a stack of keys):
    the validated stack, and a key for the compiled EM."""
    if callable(starts):
        starts, key = jax.vmap(starts)(key_stack(key)), None
    if isinstance(starts, (bool, float)):
        raise TypeError(f"starts={starts!r} is not a number of starts, a stack of inits or a function key -> init.")
    leaves = jax.tree_util.tree_leaves(starts)
    n = {np.shape(a)[0] if np.ndim(a) else None for a in leaves}
    if not leaves or len(n) != 1 or None in n or 0 in n:
        raise ValueError("starts= must be a pytree like init whose leaves are stacked along a leading axis of the "
                         f"same length >= 1 (one row per start); got leading lengths {sorted(map(str, n))}.")
    rows = [model.validate_init(jax.tree_util.tree_map(lambda a, i=i: a[i], starts), x) for i in range(n.pop())]
    return jax.tree_util.tree_map(lambda *r: jnp.stack(r), *rows), _check_key(key)


def _em_call(model, x, w, key, init, tol, maxiter, init_method, n_init, progress_every, stacked=False):
    dtype = x.dtype
    return _em_jit.select(x.size)(  # large data: compiled for the quicker loop (_jit.RUNTIME_FIRST_SIZE)
        model.static(),
        model.hyper(),
        x,
        w,
        key,
        init,
        jnp.asarray(tol, dtype),
        jnp.asarray(maxiter, jnp.int32),
        init_method,
        n_init,
        progress_every,
        stacked,
    )


__all__ = ["em", "em_pure", "em_loop", "EMOutput"]
