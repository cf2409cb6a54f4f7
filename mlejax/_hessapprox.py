"""APPROXIMATE variances without a dense Hessian: the diagonal of the information, and
its leading eigenpairs by Lanczos (``FitResult.stderr_approx``).

Both use only Hessian-vector products (:func:`mlejax._hessfree.information_matvec`),
never a k x k matrix, and both give *lower bounds* on the exact variances
``(I^-1)_ii`` when the observed information ``I`` is positive definite:

- ``"diag"``: ``1 / I_ii``. For positive-definite ``I``, Cauchy-Schwarz gives
  ``1 = (e_i' e_i)^2 <= (e_i' I e_i)(e_i' I^-1 e_i)``, so ``1 / I_ii <= (I^-1)_ii``, with
  equality only when parameter ``i`` is uncorrelated with all others. The bias grows
  with the correlations (the variance inflation: ``(I^-1)_ii I_ii = 1 / (1 - R_i^2)``,
  ``R_i^2`` the squared multiple correlation of estimate ``i`` with the others). The
  diagonal is exact (``I e_i`` for every ``i``: k Hessian-vector products, in blocks)
  or, with ``probes=m``, the stochastic estimate of Bekas, Kokiopoulou and Saad (2007):
  ``mean_j z_j * (I z_j)`` over ``m`` Rademacher vectors ``z_j`` (unbiased for ``I_ii``,
  variance ``sum_{l != i} I_il^2 / m``; exact for a diagonal ``I``); its reciprocal
  adds noise and a Jensen bias.
- ``"lanczos"``: ``steps`` Lanczos iterations on ``I`` (full reorthogonalisation, one
  Hessian-vector product each) give its ``rank`` largest eigenpairs ``(lambda_j, v_j)``
  (Ritz pairs). The covariance is approximated by ``sum_j v_j v_j' / lambda_j`` on the
  captured subspace plus ``(1 / lambda_r)(1 - V V')`` on the rest: the remaining
  eigenvalues are at most ``lambda_r``, so this fill is the smallest covariance
  consistent with what was captured, and the whole is a lower bound (in the Loewner
  order) on ``I^-1`` once the Ritz pairs have converged (``residuals`` small against the
  gaps). Large-eigenvalue directions are the *well*-determined ones; the variances of
  poorly determined parameters come mostly from the fill and can be far too small. At
  ``rank = k`` it is the exact inverse.

A non-positive ``I_ii``, or a non-positive Ritz value (Ritz values lie between the
smallest and largest eigenvalue, so one <= 0 proves that ``I`` is not positive
definite: not a maximum, or not identified), gives NaN variances with ``indefinite``
set. A Lanczos run cannot see negative curvature outside the Krylov space it built.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._hessfree import information_matvec, model_data, stderr_tree
from ._jit import model_jit
from ._tables import Table, Tabular, table_frame, table_html, table_text

METHODS = ("diag", "lanczos")
HVP_BLOCK = 8  # Hessian-vector products evaluated side by side (memory: 8 gradients' worth)
SUMMARY_ROWS = 20  # parameters shown by summary(); to_dataframe() has them all
EXTRA_STEPS = 10  # default Lanczos steps: 2 * rank + EXTRA_STEPS (at most k)

_DIAG_TEXT = ("APPROXIMATION (diagonal): variance 1/I_ii from the diagonal of the observed information{how}; "
              "a lower bound on the exact variance (I^-1)_ii, too small by the factor 1 - R_i^2 "
              "(R_i: multiple correlation of estimate i with the others)")
_LANCZOS_TEXT = ("APPROXIMATION (Lanczos, rank {rank} of {k}, {steps} steps): covariance sum_j v_j v_j'/lambda_j over "
                 "the {rank} largest eigenpairs of the observed information, the rest of the spectrum filled at "
                 "1/lambda_{rank}; a lower bound on the exact variances (exact at rank k)")


@dataclasses.dataclass(frozen=True)
class ApproxStderr(Tabular):
    """APPROXIMATE standard errors from :meth:`mlejax.FitResult.stderr_approx`: not
    the exact ones, which stay in ``res.stderr`` (or come from ``res.stderr_for``).

    Attributes:
        stderr: approximate standard errors, a pytree like ``params`` (NaN for fixed
            leaves and where undefined).
        variance: approximate variances of the free parameters, ``(k,)``, in the
            order of ``names``.
        estimate: the estimates of the free parameters, ``(k,)``, same order.
        eigenvalues: ``"lanczos"``: the ``rank`` largest eigenvalues of the observed
            information (Ritz values), descending; ``"diag"``: the diagonal ``I_ii``.
        eigenvectors: ``"lanczos"``: the matching unit eigenvectors, ``(k, rank)``;
            ``"diag"``: None.
        residuals: ``"lanczos"``: ``||I v_j - lambda_j v_j||`` per pair (an eigenvalue
            is within ``residual`` of a true one, and within ``residual^2 / gap`` when
            separated by ``gap``); ``"diag"``: None.
        indefinite: True when ``I`` was found not positive definite (variances NaN).
        names: flat names of the free parameters.
        method: ``"diag"`` or ``"lanczos"``.
        rank: the number of eigenpairs (``"lanczos"``), None for ``"diag"``.
        approximation: what the numbers approximate and how they are biased, in
            words, starting with ``"APPROXIMATION"``.
    """

    stderr: Any
    variance: Any
    estimate: Any
    eigenvalues: Any
    eigenvectors: Any
    residuals: Any
    indefinite: Any
    names: tuple = ()
    method: str = "diag"
    rank: int | None = None
    approximation: str = "APPROXIMATION"

    def _table(self, max_rows: int | None = None) -> Table:
        var, est = np.asarray(self.variance), np.asarray(self.estimate)
        rows = [(float(e), float(np.sqrt(v)) if v >= 0 else float("nan")) for e, v in zip(est, var)]
        shown = len(rows) if max_rows is None else min(max_rows, len(rows))
        notes = [self.approximation + "."]
        if shown < len(rows):
            notes.append(f"{len(rows) - shown} more parameters: to_dataframe() or .stderr has them all.")
        if bool(self.indefinite):
            notes.append("The observed information is not positive definite here: variances are NaN.")
        rank = "" if self.rank is None else f", rank {self.rank}"
        title = f"mlejax APPROXIMATE standard errors (method {self.method!r}{rank}; not exact)"
        return Table(title, "parameter", tuple(self.names[:shown]), ("coef", "approx std err"), rows[:shown],
                     tuple(notes))

    def summary(self, max_rows: int = SUMMARY_ROWS) -> str:
        """The table (the first ``max_rows`` parameters) and what it approximates."""
        return table_text(self._table(max_rows))

    def _repr_html_(self) -> str:
        return table_html(self._table(SUMMARY_ROWS))

    def to_dataframe(self) -> Any:
        """All parameters as a ``pandas.DataFrame`` (pandas is optional)."""
        return table_frame(self._table(), "ApproxStderr")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__


jax.tree_util.register_dataclass(
    ApproxStderr,
    data_fields=["stderr", "variance", "estimate", "eigenvalues", "eigenvectors", "residuals", "indefinite"],
    meta_fields=["names", "method", "rank", "approximation"],
)


# -- compiled kernels: Hessian-vector products only ---------------------------------------


def _blocks(n: int) -> int:
    return -(-n // HVP_BLOCK)


@functools.partial(model_jit, model="loglik", static_argnames=("spec",))
def information_diagonal(phi, dyn, data, *, loglik, spec):
    """``I_ii`` for every ``i``: ``e_i' I e_i``, ``HVP_BLOCK`` unit vectors at a time."""
    mv = information_matvec(loglik, spec, dyn, data, phi)
    k = phi.shape[0]

    def block(b):
        idx = b * HVP_BLOCK + jnp.arange(HVP_BLOCK)
        e = jax.nn.one_hot(idx, k, dtype=phi.dtype)  # rows past k are zero
        return jnp.sum(e * jax.vmap(mv)(e), axis=1)

    return lax.map(block, jnp.arange(_blocks(k))).reshape(-1)[:k]


@functools.partial(model_jit, model="loglik", static_argnames=("spec", "probes"))
def probed_diagonal(phi, dyn, data, key, *, loglik, spec, probes):
    """Bekas et al.'s estimate of ``diag(I)``: the mean of ``z * (I z)`` over
    ``probes`` Rademacher vectors ``z``, ``HVP_BLOCK`` at a time."""
    mv = information_matvec(loglik, spec, dyn, data, phi)
    k = phi.shape[0]

    def block(b):
        z = jax.random.rademacher(jax.random.fold_in(key, b), (HVP_BLOCK, k), phi.dtype)
        z = z * (b * HVP_BLOCK + jnp.arange(HVP_BLOCK) < probes)[:, None]  # no probes past the last
        return jnp.sum(z * jax.vmap(mv)(z), axis=0)

    return jnp.sum(lax.map(block, jnp.arange(_blocks(probes))), axis=0) / probes


def _orthogonalise(w, q):
    """``w`` less its components along the rows of ``q`` (twice: "twice is enough")."""
    w = w - q.T @ (q @ w)
    return w - q.T @ (q @ w)


@functools.partial(model_jit, model="loglik", static_argnames=("spec", "steps"))
def lanczos(phi, dyn, data, key, *, loglik, spec, steps):
    """``steps`` Lanczos iterations on ``I`` with full reorthogonalisation.

    Returns ``(q, alpha, beta)``: the orthonormal basis (rows of ``q``), the diagonal
    and off-diagonal of ``T = Q I Q'``; ``beta[-1]`` is the norm of the residual of the
    last step. When the Krylov space becomes invariant (``beta`` ~ 0) the next vector
    is a random one orthogonal to the basis and ``beta`` is 0 (``T`` block-diagonal).
    """
    mv = information_matvec(loglik, spec, dyn, data, phi)
    k, dtype = phi.shape[0], phi.dtype

    def unit(v):
        return v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(dtype).tiny)

    def body(j, c):
        q, alpha, beta, v = c
        q = q.at[j].set(v)
        iv = mv(v)
        w = _orthogonalise(iv, q)
        b = jnp.linalg.norm(w)
        invariant = b <= 1e-10 * jnp.linalg.norm(iv)
        fresh = _orthogonalise(jax.random.normal(jax.random.fold_in(key, j), (k,), dtype), q)
        nxt = jnp.where(invariant, unit(fresh), w / jnp.where(invariant, 1.0, b))
        return q, alpha.at[j].set(v @ iv), beta.at[j].set(jnp.where(invariant, 0.0, b)), nxt

    v0 = unit(jax.random.normal(key, (k,), dtype))
    init = (jnp.zeros((steps, k), dtype), jnp.zeros(steps, dtype), jnp.zeros(steps, dtype), v0)
    q, alpha, beta, _ = lax.fori_loop(0, steps, body, init)
    return q, alpha, beta


# -- host side: checks, the variances, the result --------------------------------------------


def _count(value, what: str, low: int, high: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what}={value!r} must be an integer from {low} to {high}{hint}.")
    if not low <= int(value) <= high:
        raise ValueError(f"{what}={value} is out of range: it must be from {low} to {high}{hint}.")
    return int(value)


def _check_args(method, k, rank, steps, probes):
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; use 'diag' (1/I_ii) or 'lanczos' (rank= leading "
                         "eigenpairs). Exact standard errors: res.stderr_for([...]).")
    if method == "diag":
        for name, v in (("rank", rank), ("steps", steps)):
            if v is not None:
                raise ValueError(f"{name}= is for method='lanczos'; method='diag' takes probes= (or nothing).")
        return None, None, None if probes is None else _count(probes, "probes", 1, 2**31 - 1, "")
    if probes is not None:
        raise ValueError("probes= is for method='diag'; method='lanczos' takes rank= and steps=.")
    if rank is None:
        raise ValueError(f"method='lanczos' needs rank=, the number of leading eigenpairs (1 to k = {k}).")
    rank = _count(rank, "rank", 1, k, f" (k = {k} free parameters)")
    steps = min(k, 2 * rank + EXTRA_STEPS) if steps is None else \
        _count(steps, "steps", rank, k, f" (at least rank = {rank}, at most k = {k})")
    return rank, steps, None


def _ritz(q, alpha, beta, rank):
    """The ``rank`` largest Ritz pairs of ``T`` (descending), their residual norms and
    the smallest Ritz value."""
    t = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
    theta, s = np.linalg.eigh(t)
    theta, s = theta[::-1], s[:, ::-1]
    return theta[:rank], q.T @ s[:, :rank], np.abs(beta[-1] * s[-1, :rank]), theta[-1]


def _lanczos_variance(lam, vec, smallest):
    """Diagonal of ``V diag(1/lam) V' + (1/lam_r)(1 - V V')``; NaN unless ``I`` is PD."""
    if not smallest > 0:
        return np.full(vec.shape[0], np.nan)
    w = vec**2
    return w @ (1.0 / lam) + np.clip(1.0 - w.sum(axis=1), 0.0, None) / lam[-1]


class _Parts(NamedTuple):
    variance: Any  # (k,) numpy, NaN where undefined
    eigenvalues: Any
    eigenvectors: Any
    residuals: Any
    indefinite: bool
    approximation: str


def _diag(res, model, data, key, probes) -> _Parts:
    phi, dyn = res._phi(), res._dyn
    d = np.asarray(information_diagonal(phi, dyn, data, **model) if probes is None else
                   probed_diagonal(phi, dyn, data, key, probes=probes, **model))
    how = " (exact: k Hessian-vector products)" if probes is None else \
        f" (estimated from {probes} random probes: noisy, and biased by the reciprocal)"
    var = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), np.nan)
    return _Parts(var, d, None, None, bool(np.any(d <= 0)), _DIAG_TEXT.format(how=how))


def _lanczos(res, model, data, key, rank, steps) -> _Parts:
    q, alpha, beta = (np.asarray(a) for a in lanczos(res._phi(), res._dyn, data, key, steps=steps, **model))
    lam, vec, resid, smallest = _ritz(q, alpha, beta, rank)
    text = _LANCZOS_TEXT.format(rank=rank, k=res.nparams, steps=steps)
    return _Parts(_lanczos_variance(lam, vec, smallest), lam, vec, resid, not smallest > 0, text)


def stderr_approx(res, method="diag", *, rank=None, steps=None, probes=None, key=None, data=None) -> ApproxStderr:
    """Approximate standard errors (see :meth:`mlejax.FitResult.stderr_approx`)."""
    rank, steps, probes = _check_args(method, res.nparams, rank, steps, probes)
    loglik, spec, data = model_data(res, data)
    key = jax.random.key(0) if key is None else key
    model = {"loglik": loglik, "spec": spec}
    got = _diag(res, model, data, key, probes) if method == "diag" else _lanczos(res, model, data, key, rank, steps)
    phi = np.asarray(res._phi())
    var = got.variance.astype(phi.dtype)
    return ApproxStderr(stderr_tree(res, np.sqrt(var)), var, phi, got.eigenvalues, got.eigenvectors, got.residuals,
                        got.indefinite, tuple(res.names), method, rank, got.approximation)


__all__ = ["ApproxStderr", "stderr_approx"]
