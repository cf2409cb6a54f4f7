"""Minibatch stochastic fitting (``mj.fit(..., method=optax.adam(...), batch_size=B)``),
and the entry point ``mj.fit`` hands streamed data and minibatch fits to.

An epoch visits the data in shuffled minibatches of exactly ``batch_size`` rows: in
memory, one compiled ``lax.scan`` over a fresh permutation of all rows (the ``n mod B``
rows left over sit out that epoch, different ones each time); streamed, the chunks in
a random order (sources with random access), each chunk's rows shuffled and scanned
the same way. Each step applies the optax transformation to the gradient of the
minibatch's mean negative log-likelihood ``-loglik(params, batch) / B`` (the usual
mean-loss convention, so learning rates carry over from a hand-written loop). After
``maxiter`` epochs one exact pass over all the data gives the reported ``loglik`` and
``grad_norm`` (and, unless ``cov=None``, the Hessian for inference); the result has
``stochastic=True`` and says so in its message.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .. import _fit
from .._constraints import parametrize
from .._fit import FitCore, Hooks, _raise_or_warn, check_options, conclude, prepare_data
from .._observations import Observations
from .._progress import reporter, reporting
from .._result import FitResult
from .._status import Status
from ..solvers._driver import DriverState
from ..solvers._newton import newton_proposal
from ._sources import Whole, is_source, prefetched
from ._stream import fit_stream, full_pass


@functools.partial(jax.jit, static_argnames=("loglik", "spec", "tx", "batch_size"))
def chunk_epoch(x, opt_state, bad, dyn, chunk, n_valid, key, *, loglik, spec, tx, batch_size):
    """One pass of minibatch steps over the first ``n_valid`` rows of ``chunk`` (in a
    random order): ``(x, opt_state, bad, sum of the minibatch -loglik, batches taken)``.
    ``bad`` becomes (and stays) True at a non-finite minibatch value or gradient: no
    step is taken from then on."""
    leaves = jax.tree_util.tree_leaves(chunk)
    m = leaves[0].shape[0]
    nb = m // batch_size
    u = jax.random.uniform(key, (m,))
    perm = jnp.argsort(jnp.where(jnp.arange(m) < n_valid, u, 2.0))  # real rows first, shuffled
    idx = perm[: nb * batch_size].reshape(nb, batch_size)
    n_active = n_valid // batch_size

    def objective(v, batch):
        return -loglik(spec.to_natural(v, dyn), batch) / batch_size

    def body(carry, i):
        x, s, bad, total = carry
        batch = jax.tree_util.tree_map(lambda a: a[idx[i]], chunk)
        f, g = jax.value_and_grad(objective)(x, batch)
        if isinstance(tx, optax.GradientTransformationExtraArgs):
            upd, s_new = tx.update(g, s, x, value=f, grad=g, value_fn=lambda v: objective(v, batch))
        else:
            upd, s_new = tx.update(g, s, x)
        active = i < n_active
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
        ok = active & finite & ~bad
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), s_new, s)
        return (jnp.where(ok, x + upd, x), s, bad | (active & ~finite), total + jnp.where(ok, f, 0.0)), None

    zero = jnp.zeros((), x.dtype)
    (x, opt_state, bad, total), _ = lax.scan(body, (x, opt_state, bad, zero), jnp.arange(nb))
    return x, opt_state, bad, total * batch_size, jnp.minimum(n_active, nb)


def _check_batch_size(batch_size, chunk_rows):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (rows per minibatch).")
    if batch_size > chunk_rows:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {chunk_rows} rows available per chunk (or in the "
            "data): use a smaller batch_size or a larger chunk_size."
        )
    return int(batch_size)


def _epochs(x, opt_state, source, dyn, key, epochs, rep, *, in_memory, **static):
    """Run the epochs; returns ``(x, bad)``."""
    bad = jnp.zeros((), bool)
    random_access = getattr(source, "n_chunks", None) is not None and not in_memory
    for epoch in range(epochs):
        key, k_order, k_rows = jax.random.split(key, 3)
        order = np.asarray(jax.random.permutation(k_order, source.n_chunks)) if random_access else None
        total, count = 0.0, 0
        chunks = source.chunks() if in_memory else prefetched(source.chunks(order))
        for i, (chunk, n) in enumerate(chunks):
            x, opt_state, bad, t, c = chunk_epoch(x, opt_state, bad, dyn, chunk, n, jax.random.fold_in(k_rows, i),
                                                  **static)
            total, count = total + t, count + c
        if rep is not None:  # the mean minibatch log-likelihood per row, times the rows
            per_row = -float(total) / max(int(count) * static["batch_size"], 1)
            rep.update(epoch + 1, per_row * source.nobs if source.nobs else None)
    return x, bad


def fit_minibatch(loglik, init, data, *, method, maxiter=None, tol=None, cov="observed", check_finite=True,
                  log_prior=None, batch_size, progress=None, key=None) -> FitResult:
    """:func:`mlejax.fit` with ``batch_size=``: epochs of shuffled minibatches."""
    if not isinstance(method, optax.GradientTransformation):
        raise ValueError(
            f"batch_size= runs minibatch epochs of an optax optimiser: give method=optax.adam(1e-3) (or any "
            f"optax.GradientTransformation); got method={method!r}."
        )
    ll, _, maxiter_, tol = check_options(loglik, log_prior, method, maxiter, tol, cov or "observed")
    if cov not in (None, "observed"):
        raise ValueError(f"cov={cov!r}: a minibatch fit gives cov='observed' or cov=None (no inference).")
    epochs = 10 if maxiter is None else maxiter_
    in_memory = not is_source(data)
    source = Whole(jax.device_put(prepare_data(data))) if in_memory else data
    _check_batch_size(batch_size, source.chunk_size)
    spec, dyn = parametrize(init)
    dtype = np.dtype(dyn.values[0].dtype)
    dyn_np = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), dyn)
    dyn = jax.device_put(dyn)
    x0 = jnp.asarray(spec.to_unconstrained(dyn_np, np), dtype)
    key = jax.random.key(0) if key is None else key
    rep = reporter(progress)
    static = dict(loglik=ll, spec=spec, tx=method, batch_size=int(batch_size))
    with reporting(rep, epochs, "epochs"):
        x, bad = _epochs(x0, method.init(x0), source, dyn, key, epochs, rep, in_memory=in_memory, **static)
    order = 1 if cov is None else 2
    p = full_pass(source, x, dyn, loglik=ll, spec=spec, order=order, check=check_finite)
    if check_finite and np.any(p.nonfinite > 0):
        raise ValueError("the data contain NaN or inf; remove or impute those rows (or pass check_finite=False "
                         "and mask them inside loglik).")
    x_np = np.asarray(x, dtype)
    finite = np.isfinite(p.derivs.f) and np.all(np.isfinite(p.derivs.g)) and not bool(bad)
    code = Status.MAX_ITER if finite else Status.NONFINITE
    if finite and order == 2:
        prop = newton_proposal(np, x_np, p.derivs.g, p.derivs.h, 0.0, np.asarray(tol, dtype))
        code = Status.SUCCESS if bool(prop.negligible) else code
    st = DriverState(x_np, p.derivs.f, p.derivs.g, None, np.int32(epochs), np.int32(code))
    core = _no_inference(spec, dyn_np, st) if cov is None else _inference(st, p, spec, dyn_np, ll)
    res = FitResult(**core._asdict(), _dyn=dyn_np, _data=source.data if in_memory else source,
                    names=spec.names, nobs=p.nobs, method="optax minibatch", cov_type=cov or "none",
                    _spec=spec, _loglik=ll, _obs=Observations((True,) * len(jax.tree_util.tree_leaves(source.data))
                                                              if in_memory else (), nobs_given=True),
                    stochastic=True)
    if int(res.status) != Status.MAX_ITER:  # running out of the epochs asked for is no surprise
        _raise_or_warn(res, None, ())
    return res


def _inference(st, p, spec, dyn_np, ll) -> FitCore:
    hooks = Hooks(refine=lambda info, exact: info, scores=None,
                  log_prior=(lambda params: np.asarray(ll.log_prior(params))) if hasattr(ll, "log_prior") else None)
    with np.errstate(all="ignore"):
        core = conclude(np, spec, dyn_np, st, p.derivs.h, hooks, "observed", None, None, True)
    if int(core.status) == Status.DIVERGING:  # the exact Newton step is not small: the epochs ran out
        nan = np.full_like(core.cov, np.nan)
        core = core._replace(status=np.int32(Status.MAX_ITER), converged=np.bool_(False), cov=nan,
                             stderr=jax.tree_util.tree_map(lambda a: np.full_like(a, np.nan), core.stderr))
    return core


def _no_inference(spec, dyn_np, st) -> FitCore:
    """``cov=None``: estimates, exact loglik and gradient; no Hessian formed."""
    params = spec.to_natural(st.x, dyn_np, np)
    k = st.x.shape[0]
    return FitCore(
        params=params, stderr=None, cov=None, information=None, loglik=-st.f,
        converged=np.bool_(int(st.status) == Status.SUCCESS), n_iter=st.n_iter, grad_norm=np.linalg.norm(st.g),
        status=st.status, hessian_not_negdef=np.bool_(False), not_identified=np.bool_(False),
        ill_conditioned=np.bool_(False), condition_number=np.nan, null_vector=None,
        params_at_bound=np.zeros(k, bool), x=st.x,
    )


def fit_out_of_core(loglik, init, data, *, batch_size=None, nobs=None, obs=None, clusters=None, key=None,
                    **options) -> FitResult:
    """Where ``mj.fit`` sends streamed sources and minibatch fits."""
    if nobs is not None or obs is not None:
        raise ValueError("nobs= and obs= do not apply to streamed or minibatch fits: every data leaf is one row "
                         "per observation, and nobs counts the rows.")
    if clusters is not None:
        raise ValueError("clusters= (cov='cluster') is not available for streamed or minibatch fits.")
    if batch_size is not None:
        return fit_minibatch(loglik, init, data, batch_size=batch_size, key=key, **options)
    if key is not None:
        raise ValueError("key= shuffles minibatches: it goes with batch_size=.")
    if options.get("cov") is None:
        raise ValueError("cov=None is for minibatch fits here; a streamed Newton fit forms the Hessian anyway.")
    return fit_stream(loglik, init, data, **options)


_fit.register_out_of_core(fit_out_of_core)

__all__ = ["fit_minibatch", "fit_out_of_core", "chunk_epoch"]
