"""``mj.fit_batch``: many independent fits in one compiled call, in bounded memory.

Every fit runs the same pure function as :func:`mlejax.fit` (``_fit.core``: the
optimiser loop, the information, the covariance, the flags and the status),
``vmap``-ped over a chunk of fits; the chunks run in a ``lax.fori_loop`` inside
one ``jit``. A fit that fails only sets its own status: the others are computed
exactly as if they ran alone.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import sys
import warnings
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._constraints import (
    ParamSpec,
    ParamValues,
    default_float_dtype,
    element_names,
    is_marker,
    parametrize,
)
from .._fit import (
    _ById,
    _is_concrete,
    check_nobs,
    check_options,
    core,
    core_static,
    prepare_data,
    result_meta,
)
from .._inference import cluster_codes
from .._jit import jit, register_cache
from .._observations import PER_OBSERVATION_COV, observations, require_additive
from .._progress import chunk_hook, emit_host, reporter, reporting
from .._result import META_FIELDS as _META, FitFields, FitResult, _check_level
from .._status import (
    BatchStatus,
    ConvergenceWarning,
    HessianWarning,
    Status,
    precision_of,
    warn_if_float32,
)
from .._tables import Table, Tabular
from ._lapack import lapack_free, needs_lapack_guard
from ._shard import batch_mesh, check_divisible, shard_over_batch

__all__ = ["fit_batch", "BatchFitResult"]

# Memory budget of one chunk of fits (the working set of the vmapped fit).
CHUNK_BYTES_CPU = 256 * 2**20
CHUNK_BYTES_ACCELERATOR = 1024 * 2**20


# -- the engine: chunks of vmapped fits inside one jit ------------------------------


def _leading(xs) -> int:
    return jax.tree_util.tree_leaves(xs)[0].shape[0]


def chunked_vmap(one, xs, chunk: int, n_chunks: int, progress: bool = False):
    """``jax.vmap(one)(xs)`` computed ``chunk`` items at a time (inside a trace).

    ``n_chunks`` chunks, each one ``vmap`` of ``one``, run one after the other in a
    ``fori_loop`` over preallocated outputs; the last chunk is clamped to end at
    ``B`` (it recomputes a few items of the one before, with identical results),
    so there is one traced body and no padding copy of the inputs. ``progress``
    (static) reports each finished chunk to the host (:mod:`mlejax._progress`).

    On CPU with a jaxlib whose batched LAPACK kernels can deadlock (0.10.0 to
    0.11.0), ``one``'s Cholesky factorisations, triangular solves and LU
    factorisations run as pure-JAX loops instead (:mod:`._lapack`).
    """
    batched = jax.vmap(lapack_free(one) if needs_lapack_guard() else one)
    if n_chunks == 1:
        return batched(xs)
    b = _leading(xs)

    def take(start):
        return jax.tree_util.tree_map(
            lambda a: lax.dynamic_slice_in_dim(a, start, chunk, axis=0), xs
        )

    shapes = jax.eval_shape(batched, take(0))
    outs = jax.tree_util.tree_map(lambda s: jnp.zeros((b,) + s.shape[1:], s.dtype), shapes)

    def body(c, outs):
        start = jnp.minimum(c * chunk, b - chunk)
        res = batched(take(start))
        outs = jax.tree_util.tree_map(
            lambda buf, v: lax.dynamic_update_slice_in_dim(buf, v, start, axis=0), outs, res
        )
        if progress:
            chunk_hook(start + chunk)
        return outs

    return lax.fori_loop(0, n_chunks, body, outs)


def _run_chunks(xs, shared, tol, maxiter, clusters, *, make, chunk, n_chunks, progress=False, **static):
    """Fit ``B`` problems: ``make(xs_i, shared) -> (dyn, data)`` builds fit ``i``; the
    fits run as :func:`chunked_vmap` of ``_fit.core``."""

    def one(x):
        dyn, data = make(x, shared)
        exact = []
        out, _ = core(dyn, data, tol, maxiter, clusters, exact_out=exact, **static)
        extra = {} if static.get("refine", True) else {"_exact": exact[0] if exact else jnp.asarray(True)}
        return dict(out._asdict(), _dyn=dyn, **extra)

    return chunked_vmap(one, xs, chunk, n_chunks, progress)


run_chunks = jit(
    _run_chunks,
    static_argnames=(
        "make",
        "chunk",
        "n_chunks",
        "progress",
        "loglik",
        "spec",
        "solver",
        "cov_type",
        "nobs",
        "n_clusters",
        "check_finite",
        "obs_mask",
        "refine",
    ),
)


FIRST_PASS_MIN = 32  # iterations every fit gets in the first pass


def run_fits(xs, shared, tol, codes, make, static, maxiter, batch_size, per_fit, progress=None):
    """Many fits of :func:`core` in chunks and two passes (``fit_batch`` and
    ``bootstrap``): ``xs`` is what ``make`` maps over, ``static`` the core's static
    arguments (:func:`mlejax._fit.core_static`), ``tol`` a numpy scalar (no eager
    dispatch per call). ``progress``: a reporter (:mod:`mlejax._progress`) told the
    fits done after each chunk of the first pass. The passes leave out the model's
    natural-scale Hessian (``core(refine=False)``); the rare fits whose information
    needs it (the chain rule inexact) are rerun with it, so a default call compiles
    one program."""
    sharded = batch_mesh(xs)
    on = progress is not None and sharded is None

    def call(xs, iters, static=static):
        args = (xs, shared, tol, np.asarray(iters, np.int32), codes)
        return compiled_chunks(args, make, static, batch_size, per_fit, on, sharded)(*args)

    with reporting(progress if on else None, _leading(xs), "fits"):
        # sharded: one pass (regathering the slow fits would move data between devices);
        # the two passes give each fit exactly this one pass's result anyway
        if sharded:
            out = call(xs, maxiter)
        else:
            out = fit_in_two_passes(xs, maxiter, functools.partial(call, static=dict(static, refine=False)))
            # the fits whose information needs the model's exact Hessian (a parameter
            # numerically on a bound) run again with it: compiled only when needed
            inexact = np.flatnonzero(~np.asarray(out.pop("_exact")))
            out = rerun(xs, out, inexact, functools.partial(call, iters=maxiter))
        if on:
            emit_host(_leading(xs))
    return out


def fit_in_two_passes(xs, maxiter: int, call):
    """Run ``call(xs, maxiter) -> out`` so that a few slow fits do not hold up the
    whole batch.

    Inside a ``vmap``-ped chunk every fit waits for the slowest one (a converged fit
    is masked, not removed). So the first pass gives every fit at most
    ``max(32, maxiter // 8)`` iterations; the fits that hit that limit are gathered
    in groups of a size fixed by ``B`` (so the second pass compiles once per batch
    shape, whatever the number of slow fits) and rerun from their start with the
    full ``maxiter``. A rerun follows the same path as the first pass did, so every
    fit's result is exactly what one run with ``maxiter`` gives.
    """
    first = min(maxiter, max(FIRST_PASS_MIN, maxiter // 8))
    out = call(xs, first)
    if first >= maxiter:
        return out
    redo = np.flatnonzero(np.asarray(out["status"]) == int(Status.MAX_ITER))
    return rerun(xs, out, redo, lambda xs: call(xs, maxiter))


def rerun(xs, out, redo, call):
    """``out`` with the fits ``redo`` replaced by ``call(xs[redo])``, run in groups of a
    size fixed by the batch size (one compiled program per batch shape, whatever the
    number of fits rerun)."""
    b = _leading(xs)
    size = min(b, max(16, -(-b // 32)))
    for start in range(0, redo.size, size):
        part = redo[start : start + size]
        idx = np.concatenate([part, np.full(size - part.size, part[-1])])
        again = call(jax.tree_util.tree_map(lambda a, idx=idx: a[idx], xs))
        out = jax.tree_util.tree_map(
            lambda a, r, part=part: a.at[part].set(r[: part.size]), out, {k: again[k] for k in out}
        )
    return out


# -- chunk sizes from the compiled program's own memory analysis ----------------------

_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_MAX = 32
register_cache(_COMPILED.clear)
MEMORY_SLACK = 1.25  # a compiled chunk may use this much more than the budget before it is re-planned


def _avals_key(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((jnp.shape(a), jnp.result_type(a), getattr(a, "weak_type", False),
                           getattr(a, "sharding", None)) for a in leaves)  # compiled for these shardings


def chunk_bytes(compiled) -> int | None:
    """The working memory of one compiled chunk program: XLA's temporary buffers plus
    its outputs (the preallocated results of all fits, which live alongside), from
    ``compiled.memory_analysis()``; None where the backend does not say."""
    try:
        mem = compiled.memory_analysis()
        return int(mem.temp_size_in_bytes) + int(mem.output_size_in_bytes)
    except Exception:  # noqa: BLE001
        return None


def compiled_chunks(args, make, static, batch_size, per_fit_estimate, progress=False, sharded=None):
    """The compiled :func:`run_chunks` for these arguments, with chunks sized from the
    program's own memory analysis when ``batch_size`` is None.

    The first plan comes from :func:`bytes_per_fit`; the program is compiled and XLA's
    memory analysis read. If one chunk needs more than the budget
    (:func:`_chunk_budget`, times ``MEMORY_SLACK``), the measured bytes per fit give a
    new chunk size and the program is compiled again. Compiled programs are kept per
    (function, options, shapes, sharding), so a repeated call neither traces nor
    compiles. ``sharded``: ``(mesh, axis)`` of a batch sharded over devices: each
    device runs the chunks of its own block (:func:`._shard.shard_over_batch`).
    """
    key = (make, tuple(static.items()), batch_size, bool(progress), _avals_key(args), sharded)
    hit = _COMPILED.get(key)
    if hit is not None:
        _COMPILED.move_to_end(key)
        return hit
    b = _leading(args[0])
    if sharded is not None:
        b = check_divisible(b, *sharded, "the batch (leading axis of data)")

    def build(chunk, n_chunks):
        if sharded is not None:
            fn = functools.partial(_run_chunks, make=make, chunk=chunk, n_chunks=n_chunks, **static)
            return jit(shard_over_batch(fn, *sharded, len(args) - 1)).lower(*args).compile()
        return run_chunks.lower(*args, make=make, chunk=chunk, n_chunks=n_chunks,
                                progress=bool(progress) and n_chunks > 1, **static).compile()

    chunk, n_chunks = plan_chunks(b, batch_size, per_fit_estimate)
    compiled = build(chunk, n_chunks)
    used = chunk_bytes(compiled) if batch_size is None else None
    budget = _chunk_budget()
    if used is not None and chunk > 1 and used > MEMORY_SLACK * budget:
        out_bytes = int(compiled.memory_analysis().output_size_in_bytes)
        per_fit = max((used - out_bytes) / chunk, 1.0)
        cap = max(1, int((budget - min(out_bytes, budget // 2)) // per_fit))
        if cap < chunk:
            compiled = build(*plan_chunks(b, cap, 1))
    _COMPILED[key] = compiled
    if len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    release_freed_memory()
    return compiled


def _libc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


# On by default on Linux; MLEJAX_MALLOC_TRIM=0 turns it off. (It was opt-in for a while:
# test-suite workers crashed inside XLA, later traced to vm.max_map_count, not to this.)
_MALLOC_TRIM = _libc_trim() if sys.platform.startswith("linux") and os.environ.get("MLEJAX_MALLOC_TRIM") != "0" else None


def release_freed_memory() -> None:
    """Give the memory the compiler freed back to the operating system (glibc's
    ``malloc_trim``; a no-op elsewhere). Tracing and compiling a chunk program can
    take several hundred MB that glibc keeps after freeing; without this the chunk's
    own working set, allocated next, comes on top of it and the call's peak memory
    is the compiler's plus the chunk's instead of the larger of the two."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _chunk_budget() -> int:
    try:
        platform = jax.devices()[0].platform
    except Exception:  # noqa: BLE001
        platform = "cpu"
    return CHUNK_BYTES_CPU if platform == "cpu" else CHUNK_BYTES_ACCELERATOR


def bytes_per_fit(data_elems: int, k: int, cov_type: str, itemsize: int = 8) -> int:
    """A generous estimate of the working memory of one fit: the data and the
    forward-over-reverse derivatives through the log-likelihood (a few copies of
    the data per parameter), plus the k x k matrices."""
    k = max(k, 1)
    per = data_elems * (8 + 4 * k)
    if cov_type != "observed":
        per += data_elems * 4 * k  # per-observation scores
    per += 64 * k * k + 256
    return per * itemsize


def plan_chunks(n_fits: int, batch_size, per_fit_bytes: int) -> tuple[int, int]:
    """(chunk, n_chunks). ``batch_size=None`` picks the largest chunk within the
    memory budget, then evens the chunks out (the last one overlaps the one
    before by fewer than ``n_chunks`` fits)."""
    if batch_size is None:
        cap = max(1, _chunk_budget() // max(per_fit_bytes, 1))
    else:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1
        ):
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer or None.")
        cap = int(batch_size)
    n_chunks = max(1, math.ceil(n_fits / cap))
    chunk = math.ceil(n_fits / n_chunks)
    return chunk, n_chunks


# -- fit_batch ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _FitMaker:
    """Builds fit ``i`` for ``fit_batch``: its data slice and its starting values
    (shared leaves from ``shared``, per-fit leaves from the batch, or ``init_fn``)."""

    batched: tuple  # per init leaf: does it carry the batch axis?
    init_fn: Any = None  # _ById(init_fn) or None

    def __call__(self, x, shared):
        data, dyn_b = x
        if self.init_fn is not None:
            _, dyn = parametrize(self.init_fn(data))
            return dyn, data
        pick = lambda bs, ss: tuple(b if f else s for b, s, f in zip(bs, ss, self.batched))  # noqa: E731
        dyn = ParamValues(*(pick(b, s) for b, s in zip(dyn_b, shared)))
        return dyn, data


def _check_batched_data(data):
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise ValueError("fit_batch needs data: a pytree of arrays with a leading batch axis.")
    sizes = {}
    for path, a in leaves:
        where = "data" + jax.tree_util.keystr(path)
        if jnp.ndim(a) == 0:
            raise ValueError(
                f"{where} is a scalar; every data leaf of fit_batch needs a leading batch "
                "axis (one entry per fit)."
            )
        sizes[where] = jnp.shape(a)[0]
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{w}: {n}" for w, n in sizes.items())
        raise ValueError(
            f"the data leaves disagree on the batch size (leading axis): {desc}. Every leaf "
            "needs one entry per fit along its first axis."
        )
    b = next(iter(sizes.values()))
    if b == 0:
        raise ValueError("the batch is empty (leading axis of length 0).")
    return b


def _refuse_list(data):
    """A Python list is ambiguous (one dataset per entry, or several data leaves?)."""
    if isinstance(data, list):
        raise TypeError(
            f"data is a Python list of {len(data)} entries; fit_batch reads the batch from a "
            "leading axis. For one dataset per entry, stack them: np.stack(datasets) (pad or "
            "mask datasets of different lengths); for several data leaves per dataset, pass a "
            "tuple or dict of arrays, each with the leading batch axis."
        )


def _axis_leaf(x) -> bool:
    return x is None or is_marker(x)


def _init_axes(init, init_axis):
    """Per init leaf (markers are leaves): True where the leaf carries the batch axis."""
    leaves, treedef = jax.tree_util.tree_flatten(init, is_leaf=is_marker)
    if init_axis is None or isinstance(init_axis, int):
        if init_axis not in (None, 0):
            raise ValueError(f"init_axis={init_axis!r}; use None (shared), 0, or a pytree of them.")
        return tuple([init_axis == 0] * len(leaves))
    try:
        axes = jax.tree_util.tree_broadcast(init_axis, init, is_leaf=_axis_leaf)
    except Exception as e:  # noqa: BLE001
        raise ValueError(
            "init_axis must be None, 0, or a pytree prefix of init with None/0 entries."
        ) from e
    flat = jax.tree_util.tree_leaves(axes, is_leaf=_axis_leaf)
    if len(flat) != len(leaves) or any(a not in (None, 0) for a in flat):
        raise ValueError("init_axis must be None, 0, or a pytree prefix of init with None/0 entries.")
    return tuple(a == 0 for a in flat)


def _batched_parametrize(init, batched, b):
    """``parametrize`` of an init whose ``batched`` leaves carry a leading batch axis:
    validates every start at once, returns the spec of one fit and the stacked values."""
    spec_all, dyn = parametrize(init)
    shapes = []
    for name, shape, f in zip(spec_all.leaf_names, spec_all.shapes, batched):
        if f:
            if len(shape) == 0 or shape[0] != b:
                raise ValueError(
                    f"init leaf {name!r} has shape {shape}; a per-fit start needs a leading "
                    f"batch axis of length {b} (the number of datasets)."
                )
            shape = shape[1:]
        shapes.append(shape)
    if spec_all.masks and any(f and m is not None for f, m in zip(batched, spec_all.masks)):
        raise ValueError("init: a leaf partly held by mj.Fixed(value, mask=...) cannot have a per-fit batch axis; "
                         "give one start for all fits.")
    names = []
    for i, (kind, name, shape) in enumerate(zip(spec_all.kinds, spec_all.leaf_names, shapes)):
        if kind != "fixed":
            names.extend(element_names(name, shape, spec_all.masks[i] if spec_all.masks else None))
    spec = ParamSpec(spec_all.treedef, spec_all.kinds, tuple(shapes), spec_all.leaf_names,
                     tuple(names), masks=spec_all.masks)
    full = lambda vs: tuple(  # noqa: E731
        jnp.broadcast_to(a, v.shape) if f else a for a, v, f in zip(vs, dyn.values, batched)
    )
    return spec, ParamValues(dyn.values, full(dyn.lows), full(dyn.highs))


def _split_dyn(dyn, batched):
    none_if = lambda vs, keep: tuple(v if k else None for v, k in zip(vs, keep))  # noqa: E731
    inv = tuple(not f for f in batched)
    return (
        ParamValues(*(none_if(vs, batched) for vs in dyn)),
        ParamValues(*(none_if(vs, inv) for vs in dyn)),
    )


_INIT_FN_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
register_cache(_INIT_FN_SPECS.clear)


def _init_fn_spec(init_fn, data0):
    """The parametrisation ``init_fn`` gives one dataset (its structure, constraints and
    names), from tracing it on one dataset's shapes (``data0``: shape structs; nothing
    runs eagerly, so nothing is compiled before the batch program); cached per
    function and data shapes."""
    key = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(data0))
    try:
        cache = _INIT_FN_SPECS.setdefault(init_fn, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    if key not in cache:
        specs = []

        def values(d):
            spec, dyn = parametrize(init_fn(d))
            specs.append(spec)  # static: no tracer leaks out
            return dyn

        jax.eval_shape(values, data0)
        cache[key] = specs[0]
    return cache[key]


def _one_dataset(data):
    """The shapes and dtypes of one dataset (``data[i]``), without slicing the data."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), data)


def fit_batch(
    loglik,
    init,
    data,
    *,
    method="newton",
    maxiter=None,
    tol=None,
    cov="observed",
    batch_size=None,
    init_axis=None,
    init_fn=None,
    clusters=None,
    nobs=None,
    check_finite=True,
    log_prior=None,
    progress=None,
) -> BatchFitResult:
    """Fit ``loglik`` to ``B`` datasets at once: one compiled call, one result per fit.

    ``fit_batch(loglik, init, data)`` gives the same estimates, standard errors and
    statuses as ``[mj.fit(loglik, init, d) for d in datasets]``, as one ``vmap``-ped
    computation run in chunks of ``batch_size`` fits.

    Args:
        loglik: as for :func:`mlejax.fit` (one dataset's total log-likelihood).
        init: starting values as for :func:`mlejax.fit`, shared by every fit unless
            ``init_axis`` marks leaves that carry a leading batch axis (one start per
            fit), or ``init_fn`` computes a start per dataset (then ``init`` may be
            None).
        data: a pytree of arrays, every leaf with a leading batch axis of length ``B``
            (``data[i]`` along that axis is dataset ``i``, as ``mj.fit`` would take it).
        method, maxiter, tol, cov, clusters, nobs, log_prior: as for
            :func:`mlejax.fit`, the same for every fit (``clusters``: one label per
            observation, shared).
        batch_size: fits per ``vmap``-ped chunk. ``None`` (default) picks it from an
            estimate of the memory one fit needs (about 256 MiB per chunk on CPU,
            1 GiB on an accelerator), so huge batches run in bounded memory. The
            chunks run one after the other inside one compiled call; within a chunk
            a converged fit stops changing while the others finish. Fits that need
            more than ``max(32, maxiter // 8)`` iterations are rerun in a second
            pass, so a few slow or failing fits do not hold up the whole batch (the
            results are exactly those of one pass).
        progress: ``True`` shows the fits done (a tqdm bar if installed), updated
            after each chunk inside the compiled call (a ``jax.debug.callback``
            compiled in only when asked) and at the end; or a reporter such as
            ``mj.progress.Recorder()``. The default ``None`` shows a bar only in an
            interactive session (terminal or notebook) once the fits have run for
            2 s; ``False`` never.
        init_axis: ``None`` (default: one start for all), ``0`` (every leaf of
            ``init`` has a leading batch axis), or a pytree prefix of ``init`` with
            ``None``/``0`` per leaf (a constraint marker counts as one leaf; its
            value carries the batch axis, its bounds may too).
        init_fn: ``init_fn(data_i) -> init``, a pure JAX function giving the start
            for one dataset (e.g. method-of-moments), traced once and ``vmap``-ped.
        check_finite: a dataset containing NaN/inf gets status ``NONFINITE_DATA``.

    Returns:
        A :class:`BatchFitResult`: the fields of :class:`FitResult` stacked along a
        leading batch axis, a per-fit ``status``, ``summary()``, and ``res[i]`` (one
        fit as a :class:`FitResult`).

    Bad input (shapes that disagree, invalid options, an invalid shared start) is
    refused at call time. Nothing about one dataset raises: a dataset with NaN
    data, a start where the log-likelihood is not finite, a fit that does not
    converge, all get their own status, and one warning counts them.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
        >>> def loglik(p, x):
        ...     return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))
        >>> x = np.random.default_rng(0).normal(2.0, 1.0, size=(5, 40))    # 5 datasets
        >>> res = mj.fit_batch(loglik, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
        >>> res.params["mu"].shape, res.n_converged
        ((5,), 5)
        >>> bool(np.allclose(res.params["mu"], x.mean(axis=1)))
        True
    """
    ll, solver, maxiter, tol = check_options(loglik, log_prior, method, maxiter, tol, cov)
    if data is None:
        raise ValueError("fit_batch needs data: a pytree of arrays with a leading batch axis.")
    _refuse_list(data)
    data = prepare_data(data)
    b = _check_batched_data(data)
    data0 = _one_dataset(data)
    if nobs is not None:
        nobs = check_nobs(nobs)
    n, obs_info = observations(data0, nobs)
    codes, n_clusters = cluster_codes(clusters, n, cov)

    if init_fn is not None:
        if not callable(init_fn):
            raise TypeError(f"init_fn must be a function init_fn(data_i) -> init; got {init_fn!r}.")
        if init_axis is not None:
            raise ValueError("give either init_axis (batched starts) or init_fn, not both.")
        spec = _init_fn_spec(init_fn, data0)
        batched = (False,) * len(spec.kinds)
        dyn_b = shared = None
        make = _FitMaker(batched, _ById(init_fn))
    else:
        if init is None:
            raise ValueError("init is None: give starting values, or init_fn=.")
        batched = _init_axes(init, init_axis)
        if any(batched):
            spec, dyn = _batched_parametrize(init, batched, b)
        else:
            spec, dyn = parametrize(init)
            _check_shared_init(ll, spec, dyn, data0, b)
        dyn_b, shared = _split_dyn(dyn, batched)
        make = _FitMaker(batched)

    data_elems = sum(math.prod(jnp.shape(a)[1:]) for a in jax.tree_util.tree_leaves(data))
    out = run_fits(
        (data, dyn_b), shared, np.asarray(tol, default_float_dtype()), codes, make,
        core_static(ll, spec, solver, cov, n, n_clusters, check_finite, obs_info),
        maxiter, batch_size, bytes_per_fit(data_elems, spec.nparams, cov), reporter(progress),
    )
    res = BatchFitResult(**out, _data=data, **result_meta(spec, n, solver, cov, ll, obs_info))
    if _is_concrete(res.status):
        if cov in PER_OBSERVATION_COV:
            require_additive(res, f"cov={cov!r}", batched=True)
        _warn_batch(res)
    return res


def _check_shared_init(ll, spec, dyn, data0, b):
    """A shared ``init`` whose leaves have a leading axis of the batch length, on which
    the log-likelihood fails: the user meant one start per fit (``init_axis=0``)."""
    if not any(len(s) > 0 and s[0] == b for s in spec.shapes):
        return
    try:
        jax.eval_shape(ll, spec.to_natural(spec.to_unconstrained(dyn), dyn), data0)
    except Exception as e:  # noqa: BLE001  (any failure of the user's function)
        raise ValueError(
            f"init has leaves with a leading axis of length {b}, the number of datasets, and "
            "loglik fails on one dataset with them as a shared start. For one start per fit "
            "pass init_axis=0 (or a pytree of 0/None marking the batched leaves)."
        ) from e


def _warn_batch(res, stacklevel=3):
    counts = res.status_counts()
    failed = {k: v for k, v in counts.items() if k != "SUCCESS"}
    if failed:
        total = sum(failed.values())
        desc = ", ".join(f"{k} {v}" for k, v in failed.items())
        warnings.warn(
            f"{total} of {len(res)} fits did not converge ({desc}); see res.status, "
            "res.summary() and res[i].message. The other fits are unaffected.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    if res.nobs is not None and res.nobs <= res.nparams:
        warnings.warn(
            f"only {res.nobs} observations per dataset for {res.nparams} parameters: the "
            "covariance is not identified or unreliable.",
            HessianWarning,
            stacklevel=stacklevel,
        )
    warn_if_float32(precision_of(res._loglik, jnp.result_type(res.loglik)), stacklevel)


# -- the result ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchFitResult(FitFields, BatchStatus, Tabular):
    """The result of :func:`mlejax.fit_batch`: the fields of :class:`FitResult`,
    each with a leading batch axis (one entry per fit).

    ``params``/``stderr`` are pytrees like ``init`` with a leading batch axis;
    ``cov``/``information`` are ``(B, k, k)``; ``loglik``, ``converged``,
    ``n_iter``, ``grad_norm``, ``status`` and the flags are ``(B,)``. A fit that
    failed keeps whatever its optimiser reached, with ``converged=False`` and its
    own ``status`` (a :class:`mlejax.Status` code); its standard errors are NaN
    where they cannot be trusted, exactly as for a single fit.

    ``len(res)`` is the number of fits, ``res[i]`` is fit ``i`` as a
    :class:`FitResult` (with its summary, ``conf_int(method="profile")``,
    ``delta``...), ``res[idx]`` with a slice, an index array or a boolean mask is a
    smaller ``BatchFitResult``. ``status_counts()`` counts the statuses by name and
    ``summary()`` (also ``print(res)``) reports them with the spread of the
    estimates over the converged fits.
    """

    # -- size and selection ----------------------------------------------------------
    def __len__(self) -> int:
        return int(jnp.shape(self.loglik)[0])

    def _arrays(self):
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _META
        }

    def __getitem__(self, idx):
        """``res[i]``: fit ``i`` as a :class:`FitResult`; a slice, index array or
        boolean mask: a ``BatchFitResult`` of those fits."""
        meta = {k: getattr(self, k) for k in _META}
        if isinstance(idx, (int, np.integer)):
            i = int(idx)
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"fit index {i} is out of range for a batch of {n} fits.")
            arrays = jax.tree_util.tree_map(lambda a: a[i], self._arrays())
            return FitResult(**arrays, **meta)
        if isinstance(idx, slice):
            sel = idx
        else:
            sel = np.asarray(idx)
            if sel.dtype == np.bool_:
                if sel.shape != (len(self),):
                    raise IndexError(
                        f"a boolean mask must have shape ({len(self)},); got {sel.shape}."
                    )
                sel = np.flatnonzero(sel)
            elif not np.issubdtype(sel.dtype, np.integer) or sel.ndim != 1:
                raise IndexError("index fits with an int, a slice, an int array or a boolean mask.")
        arrays = jax.tree_util.tree_map(lambda a: a[sel], self._arrays())
        return BatchFitResult(**arrays, **meta)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def as_fit_result(self) -> FitResult:
        """The batch as one :class:`FitResult` with a leading batch axis on every array
        (what ``jax.vmap(lambda d: mj.fit(...))`` returns), for ``jax.vmap`` over its
        methods."""
        return FitResult(**self._arrays(), **{k: getattr(self, k) for k in _META})

    # -- derived quantities ----------------------------------------------------------

    # -- inference -------------------------------------------------------------------
    def conf_int(self, level: float = 0.95, method: str = "wald"):
        """Wald intervals of every fit: a pytree like ``params`` of ``(low, high)``
        pairs, each ``(B, ...)``. For profile intervals use ``res[i].conf_int``."""
        _check_level(level)
        if method != "wald":
            raise ValueError(
                f"method={method!r}: a batch gives Wald intervals; use res[i].conf_int("
                "method='profile') for one fit."
            )
        return self.as_fit_result().conf_int(level, "wald")

    def delta(self, fn):
        """Delta-method estimate and standard error of ``fn(params)`` for every fit
        (``vmap`` of :meth:`FitResult.delta`)."""
        return jax.vmap(lambda r: r.delta(fn))(self.as_fit_result())

    def summary(self) -> str:
        n = len(self)
        counts = self.status_counts()
        ok = counts.get("SUCCESS", 0)
        lines = [
            f"mlejax batch fit: {n} fits, method {self.method}, covariance {self.cov_type}, "
            f"{self.nobs if self.nobs is not None else '-'} observations each",
            f"Converged: {ok} of {n} ({100.0 * ok / n:.4g}%)",
        ]
        failed = [(k, v) for k, v in counts.items() if k != "SUCCESS"]
        if failed:
            lines.append("Not converged: " + ", ".join(f"{k} {v}" for k, v in failed))
        conv = np.asarray(self.converged)
        if ok:
            phi = np.asarray(jax.vmap(self._spec.natural_flat)(self.params))[conv]
            se = np.asarray(jax.vmap(self._spec.natural_flat)(self.stderr))[conv]
            namew = max([12] + [len(nm) + 1 for nm in self.names])
            lines.append("Over the converged fits:")
            lines.append(
                f"{'':<{namew}}{'mean':>12}{'sd':>12}{'median':>12}{'mean se':>12}"
            )
            for j, nm in enumerate(self.names):
                lines.append(
                    f"{nm:<{namew}}{np.mean(phi[:, j]):>12.5g}{np.std(phi[:, j]):>12.5g}"
                    f"{np.median(phi[:, j]):>12.5g}{np.nanmean(se[:, j]):>12.5g}"
                )
        return "\n".join(lines)

    def _table(self) -> Table:
        order = self._spec.display_order
        phi = np.asarray(jax.vmap(self._spec.natural_flat)(self.params))[:, order]
        se = np.asarray(jax.vmap(self._spec.natural_flat)(self.stderr))[:, order]
        names = [self.names[i] for i in order]
        status = [Status(int(s)).name for s in np.asarray(self.status)]
        rows = [(ll, st, ok, *p, *s) for ll, st, ok, p, s in
                zip(np.asarray(self.loglik), status, np.asarray(self.converged), phi, se)]
        return Table(self.summary().splitlines()[0], "fit", tuple(range(len(self))),
                     ("loglik", "status", "converged", *names, *(f"se({n})" for n in names)), rows)

    def __str__(self) -> str:
        if _is_concrete(self.loglik) and jnp.ndim(self.loglik) == 1:
            return self.summary()
        return f"BatchFitResult(names={self.names}, traced)"

    __repr__ = __str__


jax.tree_util.register_dataclass(
    BatchFitResult,
    data_fields=[f.name for f in dataclasses.fields(BatchFitResult) if f.name not in _META],
    meta_fields=list(_META),
)
