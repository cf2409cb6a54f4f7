"""Inference without a dense Hessian: standard errors and the delta method by
conjugate gradients on Hessian-vector products.

For k free parameters the observed information is a k x k matrix: 80 GB for a
100,000-parameter network, and k Hessian-vector products to form. The standard
error of one parameter needs only one row of its inverse, ``e_i' I^-1 e_i``: solve
``I z = e_i`` by conjugate gradients, each step one Hessian-vector product (forward
over reverse autodiff, about the cost of two gradients), and never form ``I``. The
delta method for ``g(theta)`` solves ``I Z = J'`` with ``J`` the Jacobian of ``g``.

CG needs ``I`` positive definite (a maximum). A direction of non-positive curvature
met along the way (a saddle, a flat direction) stops the solve and gives NaN, with
``indefinite`` set; a solve that does not reach its tolerance gives NaN with
``converged`` False. Nothing is an approximation: at convergence the numbers are
those of the dense computation. (Diagonal and Lanczos approximations, labelled as
such, are in :mod:`mlejax._hessapprox`.)
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._inference import natural_loglik
from ._jit import model_jit

# Above this many free parameters a first-order fit's ``cov="observed"`` is computed
# Hessian-free (``cov_type == "hvp"``): k Hessian-vector products to form a dense
# 4096 x 4096 information already cost more than a fit, and it would grow as k^2.
DENSE_MAX_PARAMS = 4096
# Working copies of a k x k matrix while it is formed and analysed (Hessian,
# symmetrised copy, eigenvectors, inverse): what a dense matrix needs in memory.
DENSE_COPIES = 4
CG_TOL = 1e-10  # relative residual ||I z - b|| / ||b||
FREE_COV = (None, "hvp")


class CGSolve(NamedTuple):
    """Solutions of ``I z = b`` for each right-hand side ``b`` (rows)."""

    z: Any  # (m, k), NaN where not converged or the curvature was not positive
    converged: Any  # (m,) bool
    indefinite: Any  # (m,) bool: a direction with p' I p <= 0 was met
    n_iter: Any  # (m,) int


def cg(matvec, b, tol, maxiter) -> CGSolve:
    """Conjugate gradients for ``A z = b``, ``A`` symmetric positive definite, given
    only ``matvec(v) = A v``; stops at ``||r|| <= tol ||b||``, after ``maxiter``
    steps, or at a direction of non-positive curvature."""
    bnorm = jnp.linalg.norm(b)
    zero = jnp.zeros_like(b)

    def cond(c):
        z, r, p, rr, n, bad = c
        return (jnp.sqrt(rr) > tol * bnorm) & (n < maxiter) & ~bad

    def body(c):
        z, r, p, rr, n, bad = c
        ap = matvec(p)
        pap = p @ ap
        bad = ~(pap > 0)
        alpha = jnp.where(bad, 0.0, rr / jnp.where(bad, 1.0, pap))
        z, r = z + alpha * p, r - alpha * ap
        rr_new = r @ r
        p = r + (rr_new / jnp.where(rr > 0, rr, 1.0)) * p
        return z, r, p, rr_new, n + 1, bad

    z, r, _, rr, n, bad = lax.while_loop(cond, body, (zero, b, b, b @ b, jnp.asarray(0), jnp.asarray(False)))
    ok = (jnp.sqrt(rr) <= tol * bnorm) & ~bad
    return CGSolve(jnp.where(ok, z, jnp.nan), ok, bad, n)


def information_matvec(loglik, spec, dyn, data, phi):
    """``v -> I v``: the observed information (minus the Hessian of the log-likelihood
    on the natural scale, free parameters) times ``v``, by forward-over-reverse
    autodiff; the matrix itself is never formed."""
    grad = jax.grad(natural_loglik(loglik, spec, dyn, data))
    return lambda v: -jax.jvp(grad, (phi,), (v,))[1]


@functools.partial(model_jit, model="loglik", static_argnames=("spec",))
def solve_information(rhs, phi, dyn, data, tol, maxiter, *, loglik, spec) -> CGSolve:
    """``I z = b`` for each row ``b`` of ``rhs`` (one compiled program; the solves run
    side by side, their Hessian-vector products batched)."""
    mv = information_matvec(loglik, spec, dyn, data, phi)
    return jax.vmap(lambda b: cg(mv, b, tol, maxiter))(rhs)


def _indices(res, which) -> list[int]:
    names = [which] if isinstance(which, (str, int)) else list(which)
    out = []
    for n in names:
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
            if not 0 <= n < res.nparams:
                raise ValueError(f"stderr_for: index {n} is out of range for {res.nparams} free parameters.")
            out.append(int(n))
        elif isinstance(n, str) and n in res.names:
            out.append(res.names.index(n))
        elif isinstance(n, str) and any(m.startswith(n + "[") for m in res.names):  # a whole leaf
            out += [i for i, m in enumerate(res.names) if m.startswith(n + "[")]
        else:
            shown = ", ".join(res.names[:8]) + (", ..." if res.nparams > 8 else "")
            raise ValueError(
                f"stderr_for: {n!r} is not a free parameter; give names from res.names ({shown}), "
                "a leaf name such as 'w' for all its elements, or indices."
            )
    return out


def model_data(res, data):
    """``(loglik, spec, data)`` for Hessian-vector products at the fit: its own data
    unless ``data`` is given. Refuses a result without its model, and streamed data
    (a chunk source has no in-memory arrays to differentiate through)."""
    if res._spec is None or res._loglik is None:
        raise ValueError("this result does not carry its model (log-likelihood and data) for Hessian-free inference.")
    data = res._data if data is None else data
    if getattr(data, "streamed", False):
        raise ValueError(
            "this fit's data are streamed (an mj.stream source): Hessian-vector products need the data in "
            "memory. Pass data= (arrays, or a subset that fits) or use the fit's dense inference (cov='observed')."
        )
    return res._loglik, res._spec, data


def stderr_tree(res, flat):
    """A flat vector over the free parameters (order of ``names``: standard errors,
    interval ends, biases) as a pytree like ``params``, NaN for fixed leaves."""
    nan_dyn = res._dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in res._dyn.values))
    return res._spec.from_natural_flat(jnp.asarray(flat), nan_dyn)


def _solve(res, rhs, data, tol, maxiter):
    loglik, spec, data = model_data(res, data)
    maxiter = 10 * res.nparams if maxiter is None else int(maxiter)
    return solve_information(jnp.asarray(rhs), res._phi(), res._dyn, data, jnp.asarray(tol, rhs.dtype),
                             jnp.asarray(maxiter), loglik=loglik, spec=spec)


def stderr_for(res, which, *, data=None, tol=CG_TOL, maxiter=None) -> dict:
    """Standard errors of the chosen free parameters, ``sqrt((I^-1)_ii)``, without a
    dense Hessian: one conjugate-gradient solve ``I z = e_i`` per parameter on
    Hessian-vector products. Returns ``{name: stderr}`` (NaN where CG did not converge
    or met non-positive curvature: not a maximum, or not identified)."""
    idx = _indices(res, which)
    dtype = jnp.result_type(res.loglik)
    rhs = np.zeros((len(idx), res.nparams), dtype)
    rhs[np.arange(len(idx)), idx] = 1.0
    sol = _solve(res, rhs, data, tol, maxiter)
    var = np.asarray(sol.z)[np.arange(len(idx)), idx]
    se = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
    return {res.names[i]: float(s) for i, s in zip(idx, se)}


def delta_cg(res, jac, *, data=None, tol=CG_TOL, maxiter=None):
    """``J I^-1 J'`` for a Jacobian ``J`` (m x k) by CG solves: the delta-method
    covariance, Hessian-free."""
    sol = _solve(res, jac, data, tol, maxiter)
    return jac @ sol.z.T


def available_bytes() -> int | None:
    """Memory of the default device: its allocator limit (accelerators) or the
    machine's physical memory (CPU); None where neither is known."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"])
    except Exception:  # noqa: BLE001
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def refuse_dense(k: int, itemsize: int, method_name: str, cov, second_order: bool):
    """Refuse, before any work, a fit that would form a k x k matrix larger than memory."""
    if not (second_order or cov not in FREE_COV):
        return
    need, have = DENSE_COPIES * k * k * itemsize, available_bytes()
    if have is None or need <= have:
        return
    why = f"method={method_name!r} forms the {k} x {k} Hessian" if second_order else \
        f"cov={cov!r} forms the {k} x {k} information"
    raise ValueError(
        f"{why} ({need / 2**30:.3g} GiB with its working copies; {have / 2**30:.3g} GiB available). "
        "Use a first-order method (method='lbfgs' or an optax optimiser) with cov='hvp' "
        "(standard errors of chosen parameters by conjugate gradients: stderr_for=[...], "
        "res.delta(fn)) or cov=None (no inference)."
    )


def free_cov(cov, k: int, second_order: bool):
    """The covariance a fit computes: ``"observed"`` becomes Hessian-free ``"hvp"``
    above :data:`DENSE_MAX_PARAMS` free parameters for a first-order method."""
    if cov == "observed" and k > DENSE_MAX_PARAMS and not second_order:
        return "hvp"
    return cov


__all__ = ["stderr_for", "delta_cg", "DENSE_MAX_PARAMS"]
