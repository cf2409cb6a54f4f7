"""Batched fits without jaxlib's CPU LAPACK thread-pool deadlock.

jaxlib 0.10.0 to 0.11.0 run a batched LAPACK call on CPU (Cholesky ``potrf``,
triangular solve ``trsm``, LU ``getrf``, ...) by splitting the batch over XLA's
intra-op thread pool (``jax::ParallelBatchMap``) and blocking on a counter until
the pieces finish. The call itself runs on a worker of that same pool. When XLA's
thunk executor runs as many independent LAPACK calls at once as the pool has
threads (two on a 2-core machine; a Hessian of a Gaussian-process log-likelihood
has many independent triangular solves), every worker waits for pieces that no
free worker can run, and the process hangs forever using no CPU.
(``--xla_cpu_multi_thread_eigen=false`` does not help: that pool still runs the
thunks.) 0.9.x has no parallel path; from 0.11.1 it is compiled out of
open-source builds. See benchmarks/README.md for the plain-JAX reproducer.

:func:`lapack_free` makes a per-fit function immune: it traces the function (after
differentiation, before ``vmap``), and replaces every ``cholesky``,
``triangular_solve`` and ``lu`` in the program, including inside loops, branches
and nested calls, by pure-JAX loops (plain array operations that ``vmap``
vectorises, with no custom call). It is used only where the deadlock can happen:
on CPU with an affected jaxlib.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jex_core

__all__ = ["lapack_free", "needs_lapack_guard"]

_TARGETS = ("cholesky", "triangular_solve", "lu")
_AFFECTED = ((0, 10, 0), (0, 11, 1))  # [first, first fixed) jaxlib versions


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def needs_lapack_guard(platform: str | None = None) -> bool:
    """True on CPU with a jaxlib whose batched LAPACK kernels can deadlock."""
    import jaxlib

    if platform is None:
        try:
            platform = jax.devices()[0].platform
        except Exception:  # noqa: BLE001
            platform = "cpu"
    lo, hi = _AFFECTED
    return platform == "cpu" and lo <= _version(jaxlib.__version__) < hi


# -- pure-JAX substitutes (one matrix; batch axes by jnp.vectorize) ----------------


SMALL = 8  # up to this order: straight-line scalar code (no loop, quick to compile)


def _unroll(n: int) -> bool | int:
    return True if n <= SMALL else 1


def _stack_rows(rows, n, zero):
    return jnp.stack([jnp.stack([r[j] if j < len(r) else zero for j in range(n)]) for r in rows])


def _cholesky_small(a):
    n = a.shape[-1]
    lo = [[] for _ in range(n)]
    for j in range(n):
        d = jnp.sqrt(a[j, j] - sum((lo[j][k] ** 2 for k in range(j)), jnp.zeros((), a.dtype)))
        lo[j].append(d)
        for i in range(j + 1, n):
            s = a[i, j] - sum((lo[i][k] * lo[j][k] for k in range(j)), jnp.zeros((), a.dtype))
            lo[i].append(s / d)
    return _stack_rows(lo, n, jnp.zeros((), a.dtype))


def _cholesky2d(a):
    """Lower Cholesky factor from the lower triangle of ``a`` (NaN if not PD)."""
    n = a.shape[-1]
    if n <= SMALL:
        return _cholesky_small(a)
    idx = jnp.arange(n)

    def body(j, lo):
        row = jnp.where(idx < j, lo[j], 0)
        s = a[:, j] - lo @ row
        d = jnp.sqrt(s[j])
        col = jnp.where(idx > j, s / d, jnp.where(idx == j, d, 0))
        return lo.at[:, j].set(col)

    return lax.fori_loop(0, n, body, jnp.zeros_like(a), unroll=_unroll(n))


def _lower_solve(lo, b, unit):
    """``x`` with ``tril(lo) @ x = b`` by forward substitution (``b``: (m, k))."""
    m = lo.shape[-1]
    if m <= SMALL:
        xs = []
        for i in range(m):
            r = b[i] - sum((lo[i, k] * xs[k] for k in range(i)), jnp.zeros_like(b[i]))
            xs.append(r if unit else r / lo[i, i])
        return jnp.stack(xs)
    idx = jnp.arange(m)

    def body(i, x):
        row = jnp.where(idx < i, lo[i], 0)
        r = b[i] - row @ x
        return x.at[i].set(r if unit else r / lo[i, i])

    return lax.fori_loop(0, m, body, jnp.zeros_like(b), unroll=_unroll(m))


def _trsm2d(a, b, *, left_side, lower, transpose_a, conjugate_a, unit_diagonal):
    """``op(a) x = b`` (left) or ``x op(a) = b`` (right), as LAPACK ``trsm``."""
    a = jnp.tril(a) if lower else jnp.triu(a)
    if conjugate_a:
        a = jnp.conj(a)
    if transpose_a:
        a, lower = a.T, not lower
    if not left_side:  # x op(a) = b  <=>  op(a)^T x^T = b^T
        return _trsm2d(a.T, b.T, left_side=True, lower=not lower, transpose_a=False,
                       conjugate_a=False, unit_diagonal=unit_diagonal).T
    if not lower:  # reverse rows and columns: an upper system becomes a lower one
        return _lower_solve(a[::-1, ::-1], b[::-1], unit_diagonal)[::-1]
    return _lower_solve(a, b, unit_diagonal)


def _lu2d(a):
    """LU with partial pivoting of a square matrix: (lu, pivots, permutation) as
    ``lax.linalg.lu``."""
    n = a.shape[-1]
    idx = jnp.arange(n)

    def body(j, carry):
        a, piv, perm = carry
        p = jnp.argmax(jnp.where(idx >= j, jnp.abs(a[:, j]), -1.0))
        rj, rp = a[j], a[p]
        a = a.at[j].set(rp).at[p].set(rj)
        qj, qp = perm[j], perm[p]
        perm = perm.at[j].set(qp).at[p].set(qj)
        piv = piv.at[j].set(p.astype(piv.dtype))
        low = jnp.where(idx > j, a[:, j] / a[j, j], 0)
        a = a - jnp.outer(low, jnp.where(idx > j, a[j], 0))
        a = a.at[:, j].set(jnp.where(idx > j, low, a[:, j]))
        return a, piv, perm

    init = (a, jnp.zeros(n, jnp.int32), jnp.arange(n, dtype=jnp.int32))
    return lax.fori_loop(0, n, body, init, unroll=_unroll(n))


def _cholesky(x, **params):
    return jnp.vectorize(_cholesky2d, signature="(n,n)->(n,n)")(x)


def _triangular_solve(a, b, **params):
    f = functools.partial(_trsm2d, **params)
    return jnp.vectorize(f, signature="(m,m),(m,k)->(m,k)")(a, b) if params["left_side"] else (
        jnp.vectorize(f, signature="(m,m),(k,m)->(k,m)")(a, b)
    )


def _lu(x, **params):
    return jnp.vectorize(_lu2d, signature="(n,n)->(n,n),(n),(n)")(x)


_IMPL = {"cholesky": _cholesky, "triangular_solve": _triangular_solve, "lu": _lu}


def _substitutable(eqn) -> bool:
    if eqn.primitive.name not in _IMPL:
        return False
    if eqn.primitive.name == "lu":  # square only
        shape = eqn.invars[0].aval.shape
        return shape[-1] == shape[-2]
    return True


# -- the jaxpr rewrite --------------------------------------------------------------


def _sub_closed(value):
    """The ClosedJaxprs held in one eqn parameter (tuples and namedtuples searched)."""
    if isinstance(value, jex_core.ClosedJaxpr):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _sub_closed(v)


def _has_target(jaxpr) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _TARGETS:
            return True
        for v in eqn.params.values():
            if any(_has_target(cj.jaxpr) for cj in _sub_closed(v)):
                return True
            if isinstance(v, jex_core.Jaxpr) and _has_target(v):
                return True
    return False


def _rewrite_closed(cj):
    if not _has_target(cj.jaxpr):
        return cj
    avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype, weak_type=v.aval.weak_type)
             for v in cj.jaxpr.invars]
    return jax.make_jaxpr(lambda *a: _eval(cj.jaxpr, cj.consts, a))(*avals)


def _rewrite_param(value):
    if isinstance(value, jex_core.ClosedJaxpr):
        return _rewrite_closed(value)
    if isinstance(value, tuple):
        items = [_rewrite_param(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


_INLINE = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
           "custom_vjp_call_jaxpr", "remat", "checkpoint")


def _inline_jaxpr(eqn):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        j = eqn.params.get(key)
        if isinstance(j, jex_core.ClosedJaxpr):
            return j.jaxpr, j.consts
        if isinstance(j, jex_core.Jaxpr):
            return j, ()
    return None


def _apply(eqn, invals):
    name = eqn.primitive.name
    if _substitutable(eqn):
        out = _IMPL[name](*invals, **eqn.params)
        return list(out) if eqn.primitive.multiple_results else [out]
    if not any(_has_target(cj.jaxpr) for v in eqn.params.values() for cj in _sub_closed(v)) and not (
        isinstance(eqn.params.get("jaxpr"), jex_core.Jaxpr) and _has_target(eqn.params["jaxpr"])
    ):
        return _bind(eqn, eqn.params, invals)
    inner = _inline_jaxpr(eqn) if name in _INLINE else None
    if inner is not None:  # no differentiation follows: custom rules can be dropped
        return _eval(inner[0], inner[1], invals)
    params = {k: _rewrite_param(v) for k, v in eqn.params.items()}
    return _bind(eqn, params, invals)


def _bind(eqn, params, invals):
    bind_params = eqn.primitive.get_bind_params(params)
    subfuns = ()
    if isinstance(bind_params, tuple):  # jax < 0.7: (subfuns, params)
        subfuns, bind_params = bind_params
    out = eqn.primitive.bind(*subfuns, *invals, **bind_params)
    return list(out) if eqn.primitive.multiple_results else [out]


def _eval(jaxpr, consts, args):
    env = {}

    def read(v):
        return v.val if isinstance(v, jex_core.Literal) else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        outs = _apply(eqn, [read(v) for v in eqn.invars])
        for v, x in zip(eqn.outvars, outs):
            env[v] = x
    return [read(v) for v in jaxpr.outvars]


def lapack_free(fn):
    """``fn`` with its Cholesky factorisations, triangular solves and square LU
    factorisations computed by pure-JAX loops (same results to rounding); ``fn``
    itself when it has none."""

    @functools.wraps(fn)
    def wrapped(*args):
        closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        flat = jax.tree_util.tree_leaves(args)
        if not _has_target(closed.jaxpr):
            out = jex_core.jaxpr_as_fun(closed)(*flat)
        else:
            out = _eval(closed.jaxpr, closed.consts, flat)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), out)

    return wrapped
