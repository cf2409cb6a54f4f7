"""``mj.bootstrap``: nonparametric and parametric bootstrap of a fit, on the
``fit_batch`` engine (chunks of ``vmap``-ped fits in one compiled call).

Each replicate's data are built inside the compiled function from its own PRNG
key (resampled indices, or a user's sampler), so memory holds one chunk of
replicate datasets at a time, never ``n_boot`` copies of the data.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._constraints import ParamValues
from ._fit import _ById, _resolve_options, core_static
from ._hessfree import stderr_tree
from ._inference import normal_cdf, normal_quantile
from ._observations import require_additive
from ._progress import reporter
from ._result import FitResult, _check_level
from ._status import ConvergenceWarning, Status
from ._tables import Table, Tabular
from .backends._batch import bytes_per_fit, run_fits

__all__ = ["bootstrap", "BootstrapResult"]

KINDS = ("nonparametric", "parametric")
INTERVALS = ("percentile", "basic", "bca")


# -- how each replicate's data are made (static, hashable: part of the jit key) -----


@dataclasses.dataclass(frozen=True)
class _Resample:
    """Nonparametric: draw ``n`` observations with replacement (all observation
    leaves with the same indices; other leaves passed whole)."""

    mapped: tuple
    treedef: Any
    n: int

    def __call__(self, key, shared):
        dyn, leaves = shared
        idx = jax.random.randint(key, (self.n,), 0, self.n)
        new = [a[idx] if m else a for a, m in zip(leaves, self.mapped)]
        return dyn, jax.tree_util.tree_unflatten(self.treedef, new)


@dataclasses.dataclass(frozen=True)
class _LeaveOneOut:
    """Jackknife: the data without observation ``i``."""

    mapped: tuple
    treedef: Any
    n: int

    def __call__(self, i, shared):
        dyn, leaves = shared
        idx = jnp.arange(self.n - 1)
        idx = idx + (idx >= i)
        new = [a[idx] if m else a for a, m in zip(leaves, self.mapped)]
        return dyn, jax.tree_util.tree_unflatten(self.treedef, new)


@dataclasses.dataclass(frozen=True)
class _Simulate:
    """Parametric: ``sampler(key, params, data) -> data`` from the fitted model."""

    sampler: Any  # _ById

    def __call__(self, key, shared):
        dyn, data, params = shared
        return dyn, self.sampler(key, params, data)


def _obs_leaves(res: FitResult, what: str):
    """The data leaves, their treedef, which are observations, and their count;
    refused unless the log-likelihood is a sum over those observations."""
    require_additive(res, what)
    leaves, treedef = jax.tree_util.tree_flatten(res._data)
    mapped = res._obs.mask
    n = next(jnp.shape(a)[0] for a, m in zip(leaves, mapped) if m)
    return leaves, treedef, mapped, n


def _warm_dyn(res: FitResult, warm_start: bool):
    """Starting values of the replicate fits: the estimate (warm start) or the fit's init."""
    dyn = res._dyn
    if not warm_start:
        return dyn
    values = tuple(res._spec.treedef.flatten_up_to(res.params))
    # An estimate numerically on a bound cannot be mapped to the optimiser's scale.
    x0 = res._spec.to_unconstrained(ParamValues(values, dyn.lows, dyn.highs))
    if not bool(jnp.all(jnp.isfinite(x0))):
        return dyn
    return ParamValues(values, dyn.lows, dyn.highs)


def _run(res, make, xs, shared, solver, maxiter, tol, batch_size, data_elems, progress=None):
    spec = res._spec
    return run_fits(
        xs, shared, np.asarray(tol, jnp.result_type(res.loglik)), None, make,
        core_static(res._loglik, spec, solver, "observed", res.nobs, None, True),
        maxiter, batch_size, bytes_per_fit(data_elems, spec.nparams, "observed"), progress,
    )


def bootstrap(
    res: FitResult,
    key,
    n_boot: int = 1000,
    *,
    kind: str = "nonparametric",
    sampler=None,
    method=None,
    maxiter=None,
    tol=None,
    batch_size=None,
    warm_start: bool = True,
    progress=None,
) -> BootstrapResult:
    """Bootstrap a fit: refit ``n_boot`` replicate datasets in one compiled call.

    Args:
        res: a :class:`FitResult` from :func:`mlejax.fit` (or ``batch[i]``). Its
            log-likelihood, constraints and data are reused.
        key: a ``jax.random`` key; the replicates are a pure function of it.
        n_boot: number of replicates.
        kind: ``"nonparametric"`` (default: resample the observations, i.e. the
            data leaves sharing the leading observation axis, with replacement,
            jointly; other leaves are kept whole) or ``"parametric"`` (simulate
            from the fitted model with ``sampler``).
        sampler: for ``kind="parametric"``, a pure JAX function
            ``sampler(key, params, data) -> data`` drawing one dataset like ``data``
            from the model at ``params`` (``data`` gives shapes and covariates).
        method, maxiter, tol: optimiser of the replicate fits; default: the fit's own
            method (give ``method=`` for a fit made with an optax transformation).
        batch_size: replicate fits per ``vmap``-ped chunk (default: automatic, bounded
            memory, as in :func:`mlejax.fit_batch`).
        warm_start: start each replicate at the estimate (default) rather than at
            the fit's ``init``.
        progress: ``True`` shows the replicates done, updated after each chunk (as
            in :func:`mlejax.fit_batch`); or a reporter such as
            ``mj.progress.Recorder()``. The default shows a bar only for slow work
            in an interactive session (:mod:`mlejax.progress`).

    Returns:
        A :class:`BootstrapResult`: replicate estimates, bootstrap standard errors,
        covariance and bias, and ``conf_int(level, method="percentile" | "basic" |
        "bca")``. Replicates whose fit failed are counted and left out.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, mlejax as mj
        >>> def loglik(p, x):
        ...     return jnp.sum(jax.scipy.stats.norm.logpdf(x, p["mu"], p["sigma"]))
        >>> x = np.random.default_rng(0).normal(2.0, 1.0, 50)
        >>> res = mj.fit(loglik, {"mu": 0.0, "sigma": mj.Positive(1.0)}, x)
        >>> boot = mj.bootstrap(res, jax.random.key(0), n_boot=200)
        >>> bool(abs(boot.stderr["mu"] / res.stderr["mu"] - 1) < 0.25)
        True
    """
    if not isinstance(res, FitResult) or res._spec is None:
        raise TypeError(
            f"bootstrap needs a FitResult from mj.fit (or batch[i]); got {type(res).__name__}."
        )
    if jnp.ndim(res.loglik) != 0:
        raise ValueError("bootstrap takes one fit; for a batch, bootstrap batch[i].")
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; use 'nonparametric' or 'parametric'.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot={n_boot!r} must be an integer >= 2.")
    if method is None:
        if res.method not in ("newton", "lbfgs"):
            raise ValueError(
                "the fit used an optax transformation, which the result does not keep; pass "
                "method= (e.g. the same transformation, or 'newton')."
            )
        method = res.method
    solver, maxiter, tol = _resolve_options(method, maxiter, tol)
    key = _check_key(key)
    if not bool(res.converged):
        warnings.warn(
            f"bootstrapping a fit that did not converge (status {Status(int(res.status)).name}): "
            "the replicates scatter around a point that is not the estimate.",
            ConvergenceWarning,
            stacklevel=2,
        )
    keys = jax.random.split(key, int(n_boot))
    dyn = _warm_dyn(res, warm_start)
    data_elems = sum(int(np.prod(jnp.shape(a))) for a in jax.tree_util.tree_leaves(res._data))

    if kind == "nonparametric":
        if sampler is not None:
            raise ValueError("sampler= is for kind='parametric'.")
        leaves, treedef, mapped, n = _obs_leaves(res, "bootstrap(kind='nonparametric')")
        make = _Resample(mapped, treedef, int(n))
        shared = (dyn, leaves)
    else:
        if sampler is None or not callable(sampler):
            raise ValueError(
                "kind='parametric' needs sampler=, a function sampler(key, params, data) -> "
                "data drawing one dataset from the model at params."
            )
        make = _Simulate(_ById(sampler))
        shared = (dyn, res._data, res.params)
        _check_sampler(sampler, keys[0], res)
    rep = reporter(progress)
    out = _run(res, make, keys, shared, solver, maxiter, tol, batch_size, data_elems, rep)

    spec = res._spec
    result = BootstrapResult(
        estimate=res.params,
        replicates=out["params"],
        status=out["status"],
        converged=out["converged"],
        kind=kind,
        names=spec.names,
        _phi=np.asarray(spec.natural_flat(res.params)),
        _reps=np.asarray(jax.vmap(spec.natural_flat)(out["params"])),
        _fit=res,
        _options=(solver, maxiter, tol, batch_size, dyn),
    )
    if result.n_failed:
        counts = result.status_counts()
        desc = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "SUCCESS")
        warnings.warn(
            f"{result.n_failed} of {result.n_boot} bootstrap fits did not converge ({desc}); "
            "they are left out of the standard errors and intervals.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result


def _check_key(key):
    try:
        k = jnp.asarray(key)
    except TypeError:
        k = None
    if k is None or not (
        jnp.issubdtype(k.dtype, jax.dtypes.prng_key) or (k.dtype == jnp.uint32 and k.shape == (2,))
    ):
        raise TypeError(
            "key must be a jax.random key, e.g. jax.random.key(0) (keys are always explicit)."
        )
    return key


def _check_sampler(sampler, key, res):
    out = jax.eval_shape(sampler, key, res.params, res._data)
    want = jax.eval_shape(lambda d: d, res._data)
    if jax.tree_util.tree_structure(out) != jax.tree_util.tree_structure(want):
        raise ValueError(
            "sampler(key, params, data) must return data with the same structure as the fit's "
            f"data; got {jax.tree_util.tree_structure(out)}, expected "
            f"{jax.tree_util.tree_structure(want)}."
        )
    for o, w in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(want)):
        if o.shape != w.shape:
            raise ValueError(
                f"sampler returned a leaf of shape {o.shape} where the data have {w.shape}."
            )


@dataclasses.dataclass(frozen=True, eq=False)
class BootstrapResult(Tabular):
    """Bootstrap replicates of a fit and the inference built on them.

    Attributes:
        estimate: the original estimate (params pytree).
        replicates: the replicate estimates, a params pytree with a leading
            ``n_boot`` axis (failed replicates included; see ``converged``).
        status, converged: per replicate (:class:`mlejax.Status` codes).
        kind: ``"nonparametric"`` or ``"parametric"``.
        names: the free parameters, the order of ``cov``.

    Properties ``stderr`` and ``bias`` are pytrees like ``params`` (NaN for fixed
    leaves), ``cov`` is k x k over the free parameters; all use the converged
    replicates only.
    """

    estimate: Any
    replicates: Any
    status: Any
    converged: Any
    kind: str
    names: tuple
    _phi: Any = None
    _reps: Any = None
    _fit: Any = None
    _options: Any = None

    @property
    def n_boot(self) -> int:
        return int(np.shape(self.status)[0])

    @property
    def n_failed(self) -> int:
        return int(self.n_boot - np.sum(np.asarray(self.converged)))

    def status_counts(self) -> dict:
        s, c = np.unique(np.asarray(self.status), return_counts=True)
        order = np.argsort(-c, kind="stable")
        return {Status(int(s[i])).name: int(c[i]) for i in order}

    def _ok(self):
        return self._reps[np.asarray(self.converged)]

    def _tree(self, flat):
        return stderr_tree(self._fit, flat)

    @property
    def stderr(self):
        """Standard deviation of the converged replicates (ddof=1)."""
        return self._tree(np.std(self._ok(), axis=0, ddof=1))

    @property
    def cov(self):
        """Covariance (k x k) of the converged replicates, in the order of ``names``."""
        return jnp.asarray(np.atleast_2d(np.cov(self._ok(), rowvar=False)))

    @property
    def bias(self):
        """Mean of the converged replicates minus the estimate."""
        return self._tree(np.mean(self._ok(), axis=0) - self._phi)

    def conf_int(self, level: float = 0.95, method: str = "percentile"):
        """Bootstrap confidence intervals, a pytree like ``params`` of ``(low, high)``.

        - ``"percentile"``: the ``(1-level)/2`` and ``(1+level)/2`` quantiles of the
          replicates.
        - ``"basic"``: ``2 * estimate`` minus those quantiles (reversed).
        - ``"bca"``: bias-corrected and accelerated (Efron 1987): the quantiles
          shifted by the bias correction ``z0`` (share of replicates below the
          estimate) and the acceleration from a jackknife of the observed data
          (``nobs`` extra fits, computed once).

        Fixed leaves get ``(nan, nan)``.
        """
        _check_level(level)
        if method not in INTERVALS:
            raise ValueError(f"method={method!r}; use one of {INTERVALS}.")
        reps = self._ok()
        if reps.shape[0] < 2:
            nan = np.full(self._phi.shape, np.nan)
            return self._pairs(nan, nan)
        alpha = (1.0 - float(level)) / 2.0
        if method == "percentile":
            lo, hi = np.quantile(reps, [alpha, 1.0 - alpha], axis=0)
        elif method == "basic":
            qlo, qhi = np.quantile(reps, [alpha, 1.0 - alpha], axis=0)
            lo, hi = 2.0 * self._phi - qhi, 2.0 * self._phi - qlo
        else:
            z0 = np.atleast_1d(normal_quantile(np.clip(np.mean(reps < self._phi, axis=0), 1e-12, 1 - 1e-12)))
            a = self._acceleration
            z = normal_quantile(np.array([alpha, 1.0 - alpha]))
            lo, hi = [], []
            for j in range(reps.shape[1]):
                adj = normal_cdf(z0[j] + (z0[j] + z) / (1.0 - a[j] * (z0[j] + z)))
                q = np.quantile(reps[:, j], adj)
                lo.append(q[0])
                hi.append(q[1])
            lo, hi = np.asarray(lo), np.asarray(hi)
        return self._pairs(lo, hi)

    def _pairs(self, lo, hi):
        lo_t, hi_t = self._tree(lo), self._tree(hi)
        return jax.tree_util.tree_map(lambda a, b: (a, b), lo_t, hi_t)

    @functools.cached_property
    def _acceleration(self):
        """Jackknife acceleration ``a`` per free parameter (leave-one-out fits)."""
        res = self._fit
        solver, maxiter, tol, batch_size, dyn = self._options
        leaves, treedef, mapped, n = _obs_leaves(res, "the BCa interval's jackknife")
        data_elems = sum(int(np.prod(jnp.shape(a))) for a in leaves)
        out = _run(
            res,
            _LeaveOneOut(mapped, treedef, int(n)),
            jnp.arange(int(n)),
            (dyn, leaves),
            solver,
            maxiter,
            tol,
            batch_size,
            data_elems,
        )
        jack = np.asarray(jax.vmap(res._spec.natural_flat)(out["params"]))
        ok = np.asarray(out["converged"])
        if not np.all(ok):
            warnings.warn(
                f"{int(np.sum(~ok))} of {n} jackknife fits (for the BCa acceleration) did not "
                "converge; they are left out.",
                ConvergenceWarning,
                stacklevel=3,
            )
        jack = jack[ok]
        d = jack.mean(axis=0) - jack
        den = 6.0 * np.sum(d**2, axis=0) ** 1.5
        return np.where(den > 0, np.sum(d**3, axis=0) / np.where(den > 0, den, 1.0), 0.0)

    def _table(self) -> Table:
        ok = self._ok()
        k = len(self.names)
        if ok.shape[0] > 1:
            se, bias = np.std(ok, axis=0, ddof=1), np.mean(ok, axis=0) - self._phi
            lo, hi = np.quantile(ok, [0.025, 0.975], axis=0)
        else:
            se = bias = lo = hi = np.full(k, np.nan)
        rows = list(zip(self._phi, se, bias, lo, hi))
        return Table(self.summary().splitlines()[0], "parameter", tuple(self.names),
                     ("estimate", "boot se", "bias", "[0.025", "0.975]"), rows)

    def summary(self) -> str:
        se = np.std(self._ok(), axis=0, ddof=1) if self._ok().shape[0] > 1 else None
        lines = [
            f"mlejax {self.kind} bootstrap: {self.n_boot} replicates, "
            f"{self.n_boot - self.n_failed} converged",
        ]
        if self.n_failed:
            counts = self.status_counts()
            lines.append(
                "Failed: " + ", ".join(f"{k} {v}" for k, v in counts.items() if k != "SUCCESS")
            )
        namew = max([12] + [len(nm) + 1 for nm in self.names])
        lines.append(f"{'':<{namew}}{'estimate':>12}{'boot se':>12}{'bias':>12}{'[0.025':>12}{'0.975]':>12}")
        if se is not None:
            lo, hi = np.quantile(self._ok(), [0.025, 0.975], axis=0)
            bias = np.mean(self._ok(), axis=0) - self._phi
            for j, nm in enumerate(self.names):
                lines.append(
                    f"{nm:<{namew}}{self._phi[j]:>12.5g}{se[j]:>12.5g}{bias[j]:>12.5g}"
                    f"{lo[j]:>12.5g}{hi[j]:>12.5g}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__
