"""``HMMResult`` and the standard errors of a fitted hidden Markov model.

Standard errors come from the exact observed information of the marginal
log-likelihood -- autodiff (``jax.hessian``) through the forward algorithm -- on an
unconstrained parametrisation: each probability vector (the initial distribution,
each transition row, categorical emission rows) by log-ratios to its largest entry,
Gaussian covariances by Cholesky factors with log diagonals, constrained family
parameters by log / logit; then the delta method back to ``params``. A probability
below ``1e-8`` is on the boundary of the simplex: it is held at 0 (not a free
coordinate), its standard error is NaN and ``at_boundary`` says so -- no made-up
number for a parameter the information cannot describe.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from .._inference import free_jacobian, stderr_from_free
from .._jit import jit
from .._status import ConvergenceWarning, HessianWarning, Status, warn_if_float32
from ..mixture._result import MixtureResult
from . import _forward
from ._data import to_device, unpad
from ._emissions import simplex_from_free, simplex_to_free


class HMMOutput(NamedTuple):
    """What the compiled Baum-Welch returns (:func:`mlejax.hmm.hmm_pure`): the best restart."""

    params: Any
    loglik: Any
    n_iter: Any
    status: Any
    decreased: Any
    empty: Any  # (K,) states that received no mass (kept their parameters)
    restart_logliks: Any
    converged: Any
    nobs: Any  # the number of time steps


_MESSAGES = {
    Status.SUCCESS: "converged: the total log-likelihood changed by less than tol (hmmlearn's rule)",
    Status.MAX_ITER: "not converged: the iteration limit (maxiter) was reached. Raise maxiter, loosen tol, or "
    "try more initialisations (n_init)",
    Status.NONFINITE: "stopped: the parameters became non-finite (e.g. a Gaussian state on a single point); "
    "the last finite parameters are returned",
}


def _free(model, params):
    """Unconstrained vector, the mask of coordinates that are not free, and the
    boundary mask of the natural parameters (a pytree like params)."""
    us, skips = [], []
    bnd = {}
    for name in ("startprob", "transmat"):
        u, skip, b = simplex_to_free(params[name])
        fixed = name in model.fixed
        us.append(u.ravel())
        skips.append((skip | fixed).ravel())
        bnd[name] = b
    ep = {n: params[n] for n in model.emission.names()}
    fe = model.emission.to_free(ep)
    us.append(fe.u)
    skips.append(fe.skip | ("emission" in model.fixed))
    bnd.update(model.emission.boundary(ep))
    return jnp.concatenate(us), jnp.concatenate(skips), bnd


def _from_free(model, u, like):
    k = model.n_states
    sp = simplex_from_free(u[:k], like["startprob"])
    tm = simplex_from_free(u[k : k + k * k].reshape(k, k), like["transmat"])
    ep = {n: like[n] for n in model.emission.names()}
    return {"startprob": sp, "transmat": tm, **model.emission.from_free(u[k + k * k :], ep)}


def _chunks(a, size):
    """(N, ...) -> (ceil(N / size), size, ...), padded with zeros (masked-out sequences)."""
    n = a.shape[0]
    m = -(-n // size)
    pad = jnp.zeros((m * size - n,) + a.shape[1:], a.dtype)
    return jnp.concatenate([a, pad]).reshape((m, size) + a.shape[1:])


def information(model, params, x, mask, observed, chunk):
    """Observed information (P x P) on the free scale, summed over chunks of sequences so
    that the memory of the Hessian through the forward pass stays bounded."""
    u, skip, bnd = _free(model, params)

    def ll(v, xc, mc, oc):
        return jnp.sum(model.loglik(_from_free(model, v, params), xc, mc, oc))

    def body(h, c):
        return h + jax.hessian(ll)(u, *c), None

    h0 = jax.hessian(lambda v: model.log_prior(_from_free(model, v, params)))(u)
    h, _ = jax.lax.scan(body, h0, (_chunks(x, chunk), _chunks(mask, chunk), _chunks(observed, chunk)))
    return u, skip, bnd, -0.5 * (h + h.T)


def hmm_stderr(model, params, x, mask, observed, chunk):
    """Standard errors (like params), covariance of the flattened params, the
    information on the free scale (not-free coordinates decoupled), flags, boundary."""
    u, skip, bnd, info = information(model, params, x, mask, observed, chunk)
    jac = free_jacobian(lambda v: _from_free(model, v, params), u)
    fixed = {n: (n in model.fixed) or (n in model.emission.names() and "emission" in model.fixed) for n in params}
    nan_mask = {n: bnd.get(n, False) | fixed[n] for n in params}
    return (*stderr_from_free(jnp, params, info, jac, drop=skip, nan_mask=nan_mask), bnd)


# The result's methods, each one compiled program per model and data shape (run eagerly,
# every array operation of the emission densities and of the scans compiles on its own).
def _decode(model, params, x, mask, observed):
    lb = model.log_emission(params, x, observed)
    return _forward.viterbi(params["startprob"], params["transmat"], lb, mask)[0]


def _posterior(model, params, x, mask, observed):
    lb = model.log_emission(params, x, observed)
    return _forward.forward_backward(params["startprob"], params["transmat"], lb, mask).gamma


_decode_jit = jit(_decode, static_argnums=(0,))
_posterior_jit = jit(_posterior, static_argnums=(0,))
_loglik_jit = jit(lambda model, params, x, mask, observed: model.loglik(params, x, mask, observed), static_argnums=(0,))

_stderr_jit = jit(
    lambda static, hyper, params, x, mask, observed, chunk: hmm_stderr(
        static.with_hyper(hyper), params, x, mask, observed, chunk),
    static_argnums=(0, 6),
)


def chunk_size(model, x):
    budget = 2**22 if jax.default_backend() == "cpu" else 2**26
    per_seq = max(1, model.nparams(x) * x.shape[1] * model.n_states)
    return int(max(1, min(x.shape[0], budget // per_seq)))


@dataclasses.dataclass(frozen=True)
class HMMResult(MixtureResult):
    """The result of :func:`mlejax.em` for an HMM: an immutable pytree.

    As :class:`mlejax.MixtureResult` (``params``, ``stderr``, ``cov``, ``information``,
    ``loglik`` -- the TOTAL over all sequences --, ``aic``, ``bic``, ``converged``,
    ``n_iter``, ``status``, ``restart_logliks``, the information flags), plus:

    Attributes:
        empty_states: (K,) bool, a state that received no posterior mass in some
            iteration; it kept its previous parameters (never NaN).
        at_boundary: a pytree like ``params``: probabilities below 1e-8, held at 0
            for the standard errors, which are NaN for them.

    Methods ``decode`` (Viterbi), ``predict_proba`` (posterior state probabilities),
    ``score`` (total log-likelihood) and ``sample`` evaluate the fitted model.
    """

    empty_states: Any = None
    at_boundary: Any = None

    @property
    def n_states(self) -> int:
        return self._model.n_states

    @property
    def message(self) -> str:
        msg = _MESSAGES[Status(int(self.status))]
        if self.empty_states is not None and bool(np.any(np.asarray(self.empty_states))):
            msg += f"; states {np.flatnonzero(np.asarray(self.empty_states)).tolist()} received no mass and kept " \
                   "their previous parameters (use fewer states)"
        if self.stderr is not None and (bool(self.hessian_not_negdef) or bool(self.not_identified)):
            msg += "; the observed information is not positive definite, so standard errors are NaN"
        if self.at_boundary is not None and any(bool(np.any(np.asarray(b)))
                                                for b in jax.tree_util.tree_leaves(self.at_boundary)):
            msg += "; some probabilities are on the boundary (0): they have no standard error (NaN)"
        return msg

    def summary(self) -> str:
        return super().summary().replace(f"with {self.n_states} components", f"with {self.n_states} states", 1)

    def _seq(self, x, lengths, missing):
        seq = self._model.sequences(x, lengths, missing)
        return seq, to_device(seq)

    def decode(self, x, lengths=None, missing="error"):
        """The most probable state path (Viterbi), in the layout of ``x``."""
        seq, arrays = self._seq(x, lengths, missing)
        return unpad(_decode_jit(self._model, self.params, *arrays), seq)

    predict = decode

    def predict_proba(self, x, lengths=None, missing="error"):
        """Posterior state probabilities, (T, K) per sequence, in the layout of ``x``."""
        seq, arrays = self._seq(x, lengths, missing)
        return unpad(_posterior_jit(self._model, self.params, *arrays), seq)

    responsibilities = predict_proba

    def score_samples(self, x, lengths=None, missing="error"):
        """Log-likelihood of each sequence, (n_sequences,)."""
        seq, arrays = self._seq(x, lengths, missing)
        return _loglik_jit(self._model, self.params, *arrays)

    def score(self, x, lengths=None, missing="error"):
        """TOTAL log-likelihood of the sequences ``x`` (as hmmlearn's ``score``)."""
        return np.sum(np.asarray(self.score_samples(x, lengths, missing)))

    def sample(self, key, n):
        """One sequence of ``n`` steps from the fitted model: ``(x, states)``."""
        p = self.params
        k1, k2 = jax.random.split(key)
        keys = jax.random.split(k1, int(n))
        s0 = jax.random.categorical(keys[0], jnp.log(p["startprob"]))
        logt = jnp.log(p["transmat"])

        def step(s, kk):
            nxt = jax.random.categorical(kk, logt[s])
            return nxt, nxt

        _, rest = jax.lax.scan(step, s0, keys[1:])
        states = jnp.concatenate([s0[None], rest])
        ep = {m: p[m] for m in self._model.emission.names()}
        return self._model.emission.sample(k2, ep, states), states


_META = ("_model", "nparams")
jax.tree_util.register_dataclass(
    HMMResult,
    data_fields=[f.name for f in dataclasses.fields(HMMResult) if f.name not in _META],
    meta_fields=list(_META),
)


def build_hmm_result(model, out, seq, *, tol, stderr=True):
    """Host side after the compiled Baum-Welch: warnings, flags, standard errors."""
    status = int(out.status)
    empty = np.asarray(out.empty)
    if np.any(empty):
        warnings.warn(
            f"states {np.flatnonzero(empty).tolist()} received no posterior mass: they kept their previous "
            "parameters (flagged in res.empty_states). Use fewer states or start elsewhere (init, n_init).",
            ConvergenceWarning,
            stacklevel=4,
        )
    if status == Status.NONFINITE:
        warnings.warn(
            f"Baum-Welch stopped after {int(out.n_iter)} iterations: the parameters became non-finite (e.g. a "
            "Gaussian state on a single point). The last finite parameters are returned; set reg_covar > 0, use "
            "fewer states, or start elsewhere.",
            ConvergenceWarning,
            stacklevel=4,
        )
    elif status != Status.SUCCESS and tol > 0:
        warnings.warn(
            f"Baum-Welch did not converge in {int(out.n_iter)} iterations (converged=False): raise maxiter, "
            "loosen tol, or try more initialisations (n_init).",
            ConvergenceWarning,
            stacklevel=4,
        )
    params = out.params
    se = cov = info = bnd = None
    flags = (jnp.asarray(False),) * 3
    if stderr:
        warn_if_float32(jnp.result_type(out.loglik), 4)
        x, mask, observed = to_device(seq)
        se, cov, info, *flags, bnd = _stderr_jit(model.static(), model.hyper(), params, x, mask, observed,
                                                 chunk_size(model, x))
        if bool(flags[0]) or bool(flags[1]):
            warnings.warn(
                "the observed information of the HMM is not positive definite: standard errors are NaN. Causes: "
                "an empty or duplicated state, too many states for the data, or EM stopped away from a maximum "
                "(lower tol, raise maxiter).",
                HessianWarning,
                stacklevel=4,
            )
    return HMMResult(
        params=params, stderr=se, cov=cov, information=info, loglik=out.loglik, converged=out.converged,
        n_iter=out.n_iter, status=out.status, nobs=out.nobs, restart_logliks=out.restart_logliks,
        loglik_decreased=out.decreased, hessian_not_negdef=flags[0], not_identified=flags[1],
        ill_conditioned=flags[2], _model=model.static(), nparams=model.nparams(np.asarray(seq.x)),
        empty_states=out.empty, at_boundary=bnd,
    )
