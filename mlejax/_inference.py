"""From the log-likelihood at the optimum to inference: information, covariance, flags.

All on the natural scale over the free parameters. The model-independent pieces
take the array namespace ``xp``: ``jax.numpy`` inside the compiled fit (and under
``vmap``), ``numpy`` on the host for a single fit, one definition for both.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from ._jit import model_jit
from ._linalg import eigh as small_eigh, solve as small_solve
from ._observations import additivity, is_additive, natural_loglik_of

_STD_NORMAL = statistics.NormalDist()

COV_TYPES = ("observed", "opg", "sandwich", "cluster")


def natural_loglik(loglik, spec, dyn, data):
    """The log-likelihood as a function of the flat natural vector of free parameters."""
    return lambda phi: loglik(spec.from_natural_flat(phi, dyn), data)


def observed_information(ll_nat, phi):
    """Minus the Hessian of the log-likelihood (exact, by autodiff)."""
    h = jax.hessian(ll_nat)(phi)
    return -0.5 * (h + h.T)


def information_by_chain_rule(xp, hess_u, g_u, d1, d2):
    """The observed information on the natural scale from the Hessian ``hess_u`` and
    gradient ``g_u`` of ``-loglik`` on the unconstrained scale, for elementwise
    transforms ``phi(u)`` with derivatives ``d1 = phi'``, ``d2 = phi''``:
    ``H_u = D H_phi D + diag(phi'' g_phi)``, ``g_u = D g_phi`` (``D = diag(phi')``).
    Returns ``(information, exact)``; ``exact`` is False where a ``phi'`` is too small
    (a parameter numerically on a bound) for the division to keep precision."""
    dtype = hess_u.dtype
    exact = xp.all(xp.abs(d1) > xp.finfo(dtype).tiny ** 0.25) & xp.all(xp.isfinite(d1))
    d = xp.where(exact, d1, 1.0)
    g_phi = g_u / d
    h = (hess_u - xp.diag(d2 * g_phi)) / xp.outer(d, d)
    return 0.5 * (h + h.T), exact


class InfoAnalysis(NamedTuple):
    inverse: Any  # inverse of the information, NaN where it cannot be trusted
    not_negdef: Any  # Hessian has a positive eigenvalue (information not PSD) or NaN
    not_identified: Any  # information singular: a direction the data do not determine
    ill_conditioned: Any  # usable, but the correlation-scaled condition number is large
    condition_number: Any
    null_vector: Any  # the least-determined parameter combination (unit vector)


def _scaled_eigh(info, xp=jnp):
    """Eigen-decomposition of the correlation-scaled information ``D^-1 I D^-1``
    (``D = sqrt|diag I|``, 1 where 0): ``(finite, d, w, v)``; a non-finite
    information is replaced by the identity and flagged by ``finite``."""
    finite = xp.all(xp.isfinite(info))
    safe = xp.where(finite, info, xp.eye(info.shape[0], dtype=info.dtype))
    dg = xp.diag(safe)
    d = xp.where(dg > 0, xp.sqrt(xp.abs(dg)), 1.0)
    w, v = small_eigh(safe / xp.outer(d, d), xp)
    return finite, d, w, v


def analyse_information(info, xp=jnp) -> InfoAnalysis:
    """Eigen-analysis of the correlation-scaled information matrix.

    Scaling by the diagonal makes the checks independent of the parameters' units:
    the condition number measures how close the parameters are to being confounded.
    """
    k = info.shape[0]
    dtype = info.dtype
    eps = xp.finfo(dtype).eps
    finite, d, w, v = _scaled_eigh(info, xp)
    wmax = xp.max(xp.abs(w), initial=0.0)
    wmin = w[0] if k else xp.asarray(1.0, dtype)
    singular_tol = 1e4 * eps * wmax
    not_negdef = ~finite | (wmin < -singular_tol)
    not_identified = finite & ~not_negdef & (wmin <= singular_tol)
    cond = xp.where(wmin > 0, wmax / xp.where(wmin > 0, wmin, 1.0), xp.inf)
    ill = ~not_negdef & ~not_identified & (cond > 1.0 / xp.sqrt(eps))
    bad = not_negdef | not_identified
    inv = (v / xp.where(w == 0, 1.0, w)) @ v.T / xp.outer(d, d)
    inv = xp.where(bad, xp.nan, inv)
    null = v[:, 0] / d if k else xp.zeros((0,), dtype)
    null = null / xp.maximum(xp.linalg.norm(null), xp.finfo(dtype).tiny)
    return InfoAnalysis(inv, not_negdef, not_identified, ill, cond, null)


class FreeStderr(NamedTuple):
    """Standard errors by the delta method from an information on a free scale."""

    stderr: Any  # a pytree like the parameters
    cov: Any  # covariance of the flattened natural parameters
    information: Any  # the information used (decoupled coordinates set to the identity)
    not_negdef: Any
    not_identified: Any
    ill_conditioned: Any


def stderr_from_free(xp, params, info, jac, drop=None, nan_mask=None) -> FreeStderr:
    """Standard errors of ``params`` from the observed information ``info`` on a free
    (unconstrained) scale and the Jacobian ``jac`` of the flattened natural parameters
    in the free ones: ``cov = J I^-1 J'``. ``drop`` (bool, one per free coordinate):
    coordinates decoupled from the rest and given no variance; ``nan_mask``: a pytree
    like ``params`` of leaves whose standard error is NaN (fixed, on a bound). Written
    once against ``xp``: numpy on the host after a single fit (the model's Hessian is
    the only compiled part), ``jax.numpy`` inside compiled batches."""
    if drop is not None:
        both = drop[:, None] | drop[None, :]
        info = xp.where(both, xp.eye(info.shape[0], dtype=info.dtype), info)
    an = analyse_information(info, xp)
    inv = an.inverse if drop is None else xp.where(both, 0.0, an.inverse)
    cov = jac @ inv @ jac.T
    var = xp.diag(cov)
    se = unflatten_like(params, xp.where(var >= 0, xp.sqrt(xp.abs(var)), xp.nan), xp)
    if nan_mask is not None:
        se = jax.tree_util.tree_map(lambda s, m: xp.where(m, xp.nan, s), se, nan_mask)
    return FreeStderr(se, cov, info, an.not_negdef, an.not_identified, an.ill_conditioned)


def free_jacobian(from_free, u):
    """The Jacobian, at the free (unconstrained) point ``u``, of the flattened natural
    parameters ``from_free(v)`` (a pytree): the delta method's ``J`` in
    :func:`stderr_from_free`."""
    return jax.jacobian(lambda v: jax.flatten_util.ravel_pytree(from_free(v))[0])(u)


def unflatten_like(params, flat, xp):
    """``flat`` (the leaves of ``params`` raveled in ``jax.flatten_util.ravel_pytree``'s
    order) as a pytree like ``params``, without tracing anything (numpy on the host)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    sizes = np.cumsum([0] + [int(np.size(a)) for a in leaves])
    return treedef.unflatten([xp.reshape(flat[a:b], np.shape(leaf)) for a, b, leaf in zip(sizes[:-1], sizes[1:], leaves)])


def pinv_information(info):
    """A pseudo-inverse of the information: the documented fallback covariance
    (``FitResult.with_cov("pinv")``) when the information is singular or indefinite.

    The Moore-Penrose inverse of the correlation-scaled information ``D^-1 I D^-1``,
    scaled back (``D^-1 pinv(.) D^-1``), so the cut-off does not depend on the
    parameters' units: eigenvalues with ``|w| <= 1e4 * eps * max|w|`` count as zero;
    the rest, negative ones included, are inverted. It is a generalised inverse
    (``I G I = I``), so variances of identified combinations ``c' theta`` (``c`` in
    the row space of ``I``) are exact; it equals the plain inverse when ``I`` is
    invertible. NaN if the information is not finite.
    """
    eps = jnp.finfo(info.dtype).eps
    finite, d, w, v = _scaled_eigh(info)
    cut = 1e4 * eps * jnp.max(jnp.abs(w), initial=0.0)
    winv = jnp.where(jnp.abs(w) > cut, 1.0 / jnp.where(jnp.abs(w) > cut, w, 1.0), 0.0)
    out = (v * winv) @ v.T / jnp.outer(d, d)
    return jnp.where(finite, out, jnp.nan)


def per_observation_scores(loglik, spec, dyn, data, phi, mask):
    """Scores (n x k) of each observation, and whether they may be used: the gradient
    of the log-likelihood of the data sliced to one observation (the leaves flagged in
    ``mask``; other leaves passed whole), valid only where the total log-likelihood is
    the sum of the per-observation ones (checked here, see ``_observations``)."""
    if mask is None or not any(mask):
        raise ValueError(
            "cov='opg', 'sandwich' and 'cluster' need per-observation scores: give data whose "
            "leaves share a leading observation axis, or name them with obs=."
        )
    a, scores = additivity(natural_loglik_of(loglik, spec, dyn), phi, data, mask)
    return scores, is_additive(a)


def checked_scores(loglik, spec, dyn, data, phi, mask):
    """The per-observation scores, NaN unless the log-likelihood is the sum over the
    observation leaves (so a covariance built on them is NaN, never wrong numbers;
    ``mj.fit`` raises on the host instead)."""
    scores, additive = per_observation_scores(loglik, spec, dyn, data, phi, mask)
    return jnp.where(additive, scores, jnp.nan)


# one compiled program per model (eagerly, the per-observation gradients and the
# additivity check would compile ~100 small programs on a first call)
checked_scores_jit = model_jit(checked_scores, "loglik", static_argnames=("spec", "mask"))


def _segment_sum(xp, scores, codes, n_segments):
    if xp is jnp:
        return jax.ops.segment_sum(scores, codes, num_segments=n_segments)
    out = np.zeros((n_segments, scores.shape[1]), scores.dtype)
    np.add.at(out, np.asarray(codes), scores)
    return out


def covariance(cov_type, analysis, scores=None, clusters=None, n_clusters=None, xp=jnp):
    """The covariance of the estimates for a covariance type.

    - ``observed``: inverse observed information.
    - ``opg``: inverse outer product of the per-observation scores (BHHH).
    - ``sandwich``: ``H^-1 (S'S) H^-1`` (Huber-White, statsmodels' HC0).
    - ``cluster``: the sandwich with scores summed within clusters, with
      statsmodels' small-sample factor ``G/(G-1) (n-1)/(n-k)``.
    """
    hinv = analysis.inverse
    if cov_type == "observed":
        return hinv
    if cov_type == "opg":
        return analyse_information(scores.T @ scores, xp).inverse
    if cov_type == "sandwich":
        return hinv @ (scores.T @ scores) @ hinv
    if cov_type == "cluster":
        n, k = scores.shape
        g = n_clusters
        sums = _segment_sum(xp, scores, clusters, g)
        factor = g / (g - 1) * (n - 1) / (n - k)
        return factor * hinv @ (sums.T @ sums) @ hinv
    raise AssertionError(cov_type)


def at_bound(phi, stderr, low, high, xp=jnp):
    """A parameter within half a standard error of a bound (iminuit's rule), or
    numerically on it where no standard error is available."""
    dist = xp.minimum(phi - low, high - phi)
    near = xp.where(
        xp.isfinite(stderr), dist <= 0.5 * stderr, dist <= 1e-8 * xp.maximum(xp.abs(phi), 1.0)
    )
    return near & (xp.isfinite(low) | xp.isfinite(high))


def diverging(xp, phi, info, grad_nat, held):
    """A point that passed the convergence test while the exact Newton step still moves a
    parameter (not held at a bound) by more than 1e-3 of its size is no maximum: the
    log-likelihood keeps rising ever more slowly towards a supremum at infinity.
    ``grad_nat`` is the gradient of the log-likelihood on the natural scale."""
    both = held[:, None] | held[None, :]
    info_free = xp.where(both, xp.eye(phi.shape[0], dtype=phi.dtype), info)
    rhs = xp.where(held, 0.0, grad_nat)
    if xp is jnp:
        step = small_solve(info_free, rhs)
    else:  # numpy raises on a singular matrix where jax gives NaN/inf
        try:
            step = np.linalg.solve(info_free, rhs)
        except np.linalg.LinAlgError:
            step = np.full_like(rhs, np.nan)
    return xp.any(xp.abs(step) / xp.maximum(xp.abs(phi), 1.0) > 1e-3)


def cluster_codes(clusters, nobs, cov):
    """Cluster labels as integer codes and their count (``(None, None)`` unless ``cov='cluster'``)."""
    if cov != "cluster":
        if clusters is not None:
            raise ValueError("clusters= is only used with cov='cluster'.")
        return None, None
    if clusters is None:
        raise ValueError("cov='cluster' needs clusters=, one label per observation.")
    labels = np.asarray(clusters)
    if labels.ndim != 1 or labels.shape[0] != nobs:
        raise ValueError(
            f"clusters has shape {labels.shape}; it needs one label per observation ({nobs},)."
        )
    uniq, codes = np.unique(labels, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError("cov='cluster' needs at least two clusters.")
    return jnp.asarray(codes), int(len(uniq))


def normal_quantile(p):
    """The standard normal quantile at ``p`` (a float or array), computed on the host
    in float64 (``statistics.NormalDist``, exact to rounding), so a summary or a Wald
    interval compiles nothing; ``jax.scipy.special.ndtri`` when ``p`` is traced."""
    if isinstance(p, jax.core.Tracer):
        return jax.scipy.special.ndtri(p)
    q = np.vectorize(lambda v: _STD_NORMAL.inv_cdf(v) if 0.0 < v < 1.0 else
                     (-np.inf if v == 0.0 else np.inf if v == 1.0 else np.nan), otypes=[float])(np.asarray(p, float))
    return float(q) if q.ndim == 0 else q


def normal_cdf(x):
    """The standard normal distribution function on the host (float or array)."""
    out = np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2.0)), otypes=[float])(np.asarray(x, float))
    return float(out) if out.ndim == 0 else out
