"""EM on streamed data (``mj.em(mj.GaussianMixture(k), source)``): every iteration is
one pass over the chunks summing the E-step's sufficient statistics and the
log-likelihood, then one M-step; the same iterates and stopping rule as the in-memory
:func:`~mlejax.mixture._em.em_loop`, so the result equals the in-memory fit to rounding.
The data are centred on the mean of all rows (a first pass), the start is ``init=`` or
an in-memory EM fit of the first chunk, and the standard errors sum the observed
information of the marginal log-likelihood over the chunks."""

from __future__ import annotations

import dataclasses
import functools
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np

from .._jit import jit
from .._progress import reporter, reporting
from .._status import Status
from ..backends._sources import prefetched
from ._gmm import GaussianMixture
from ._result import build_result, marginal_information, stderr_from_information


def _weights(x, n_valid):
    return (jnp.arange(x.shape[0]) < n_valid).astype(x.dtype)


@functools.partial(jit, static_argnums=0)
def _chunk_stats(static, hyper, state, x, n_valid, shift):
    model = static.with_hyper(hyper)
    data = model.prepare(x, _weights(x, n_valid), shift)
    stats, ll = model.e_step(state, data)
    return stats, ll, jnp.sum(~jnp.isfinite(x) & (_weights(x, n_valid)[:, None] > 0))


@functools.partial(jit, static_argnums=0)
def _m_step(static, hyper, state, stats, x, shift):
    model = static.with_hyper(hyper)
    return model.m_step(state, stats, model.prepare(x, _weights(x, x.shape[0]), shift))


@functools.partial(jit, static_argnums=0)
def _state(static, hyper, params, x, shift):
    model = static.with_hyper(hyper)
    return model.state_from_params(params, model.prepare(x, _weights(x, x.shape[0]), shift))


@functools.partial(jit, static_argnums=(0, 4))
def _chunk_information(static, hyper, params, x, chunk, n_valid):
    return marginal_information(static.with_hyper(hyper), params, x, _weights(x, n_valid), chunk)[1]


@functools.partial(jit, static_argnums=0)
def _stderr(static, hyper, params, info):
    """The standard errors from the summed information: one program (eagerly, its
    linear algebra and Jacobian would compile ~140 small programs on a first call)."""
    model = static.with_hyper(hyper)
    return stderr_from_information(model, params, model.to_free(params), info)


def _x(chunk):
    x = jnp.asarray(chunk)
    return x[:, None] if x.ndim == 1 else x


def _mean_pass(source, dtype):
    total, s, bad = 0, 0.0, 0
    for chunk, n in prefetched(source.chunks()):
        x = np.asarray(_x(chunk))[:n]
        total, s, bad = total + n, s + x.sum(0), bad + int(np.sum(~np.isfinite(x)))
    if bad:
        raise ValueError(f"data contain NaN or inf ({bad} values); remove or impute those rows.")
    return total, jnp.asarray(s / total, dtype)


def em_stream(model, source, *, key, n_init, maxiter, tol, init, init_method, stderr, progress, em_fn):
    """``mj.em`` on a streamed source (Gaussian mixtures); ``em_fn`` fits the first chunk for the start."""
    if not isinstance(model, GaussianMixture):
        raise ValueError("streamed EM is implemented for mj.GaussianMixture; fit other mixtures in memory.")
    if float(model.reg_covar) <= 0:
        # a component can collapse onto a point only without regularisation, and the
        # streamed loop does not track the data's scale that the collapse check needs
        raise ValueError("streamed EM needs reg_covar > 0 (the default is 1e-6); reg_covar=0 is for in-memory fits.")
    first, n0 = next(iter(source.chunks()))
    x0 = model.validate_data(np.asarray(_x(first))[:n0])
    dtype = x0.dtype
    total, shift = _mean_pass(source, dtype)
    if init is None:
        params = em_fn(model, x0, key=key, n_init=n_init, init_method=init_method, stderr=False).params
    else:
        params = model.validate_init(init, x0)
    static, hyper = model.static(), model.hyper()
    xs = _x(first).astype(dtype)
    state = _state(static, hyper, params, xs, shift)
    loglik, n_iter, status, decreased = -np.inf, 0, Status.RUNNING, False
    rep = reporter(progress)
    with reporting(rep, maxiter, "EM passes"):
        while status == Status.RUNNING:
            stats, ll = 0.0, 0.0
            for chunk, n in prefetched(source.chunks()):
                s, l_c, _ = _chunk_stats(static, hyper, state, _x(chunk).astype(dtype), n, shift)
                stats, ll = stats + s, ll + l_c
            ll = float(ll)
            new = _m_step(static, hyper, state, stats, xs, shift)
            ok = bool(model.is_valid(new)) and np.isfinite(ll)
            n_iter += int(ok)
            decreased |= ok and ll < loglik - 1e-9 * max(abs(ll), 1.0)
            status = (Status.NONFINITE if not ok else Status.SUCCESS if abs(ll - loglik) < tol * total
                      else Status.MAX_ITER if n_iter >= maxiter else Status.RUNNING)
            state = new if ok else state
            loglik = ll
            if rep is not None and ok:
                rep.update(n_iter, ll)
    params = model.params_from_state(state, SimpleNamespace(shift=shift))
    out = SimpleNamespace(  # the fields of an EMOutput
        params=params, loglik=jnp.asarray(loglik, dtype), n_iter=jnp.asarray(n_iter), status=jnp.asarray(int(status)),
        decreased=jnp.asarray(decreased), restart_logliks=jnp.asarray([loglik], dtype),
        converged=jnp.asarray(status == Status.SUCCESS), nobs=jnp.asarray(float(total), dtype),
        finite_data=jnp.asarray(True), restart_status=None, restart_fingerprints=None,
        collapsed=jnp.zeros(model.n_components, bool))  # reg_covar > 0: no component can collapse
    res = build_result(model, out, x0, None, tol=tol, stderr=False)
    if stderr is None or stderr:
        info = 0.0
        for chunk, n in prefetched(source.chunks()):
            info = info + _chunk_information(static, hyper, params, _x(chunk).astype(dtype), source.chunk_size, n)
        se, cov, info, nd, ni, ic = _stderr(static, hyper, params, info)
        res = dataclasses.replace(res, stderr=se, cov=cov, information=info, hessian_not_negdef=nd,
                                  not_identified=ni, ill_conditioned=ic)
    return res
