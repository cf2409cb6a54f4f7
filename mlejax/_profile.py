"""Profile likelihood: the profile curve of one parameter and likelihood-ratio
(profile) confidence intervals.

The profile log-likelihood of parameter ``j`` at value ``v`` is the maximum of
the log-likelihood over the other free parameters with ``theta_j = v``. It is
computed on the optimiser's unconstrained scale: every constraint maps one
element to one element monotonically, so fixing ``theta_j`` fixes one
unconstrained coordinate ``t``. The other coordinates are re-maximised with the
same Newton solver and driver loop as :func:`mlejax.fit`, warm-started from the
estimate. The parameter index, the grid and the critical value are arrays, so
one compiled function serves every parameter, grid and level of a model (it
recompiles only for a new loglik, parametrisation or shape).

A profile interval is ``{v : 2 (loglik_hat - profile(v)) <= chi2_1(level)}``.
Each end is found by expanding a bracket outwards from the estimate (doubling
steps on the unconstrained scale) and then by safeguarded Newton iterations on
the profile deviance (its derivative is free: by the envelope theorem it is the
partial derivative of the log-likelihood at the re-maximised point), falling
back to bisection. Because the search runs on the unconstrained scale, an end
never leaves the parameter space: if the deviance stays below the critical
value all the way to a bound (or to infinity), that bound is the end.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._constraints import ParamValues
from ._jit import model_jit
from ._progress import host_chunks, reporter
from ._status import ConvergenceWarning, HessianWarning, Status
from ._tables import Table, Tabular
from .solvers._driver import minimise
from .solvers._solvers import Newton, Objective

_INNER_TOL = 1e-10


def _inner_tol(dtype):
    """The inner fits' tolerance: _INNER_TOL, or what the dtype can resolve (float32)."""
    return jnp.asarray(max(_INNER_TOL, 64 * float(jnp.finfo(dtype).eps)), dtype)
_INNER_MAXITER = 100
_N_EXPAND = 60  # doublings of the bracket step before declaring the side unbounded
_N_ROOT = 100  # safeguarded Newton / bisection iterations per end
PROGRESS_UPDATES = 20  # with progress on, a grid runs in about this many calls


class Profile(NamedTuple):
    """A profile log-likelihood curve from :meth:`mlejax.FitResult.profile`.

    Attributes:
        name: the profiled parameter (an element name such as ``"beta[2]"``).
        values: the grid of values of that parameter (natural scale).
        loglik: the profile log-likelihood at each grid value: the maximum over
            the other free parameters with this one held at the grid value.
        deviance: ``2 (loglik_hat - loglik)``; compare with a chi-squared(1)
            quantile (3.84 for 95%).
        params: the re-maximised parameters, a pytree like ``params`` with a
            leading axis over the grid.
        converged: per grid value, whether the inner maximisation converged.
    """

    name: str
    values: Any
    loglik: Any
    deviance: Any
    params: Any
    converged: Any

    def _table(self) -> Table:
        rows = list(zip(np.asarray(self.loglik), np.asarray(self.deviance), np.asarray(self.converged)))
        return Table(f"mlejax profile log-likelihood of {self.name}", self.name,
                     tuple(float(v) for v in np.asarray(self.values)), ("loglik", "deviance", "converged"), rows,
                     ("deviance = 2 (loglik_hat - loglik); 3.84 is the 95% cut-off",))

    # a NamedTuple takes no mixin base: Tabular's methods, assigned
    summary = Tabular.summary
    _repr_html_ = Tabular._repr_html_
    to_dataframe = Tabular.to_dataframe


# -- the profiled objective ---------------------------------------------------------


def _objective(loglik, spec, dyn, data):
    """``F(x) = -loglik`` on the unconstrained scale (the one the fit minimised)."""
    return lambda x: -loglik(spec.to_natural(x, dyn), data)


def _inner(F, j, t, z0, tol, maxiter):
    """Minimise ``F`` over all coordinates but ``j``, which is held at ``t``.

    Coordinate ``j`` is masked (so ``j`` can be a traced index) and pinned by a
    unit quadratic, which keeps the Newton system non-singular without moving it.
    Returns the full point, ``F`` there, ``dF/dx_j`` there, and whether it converged.
    """
    e = jnp.arange(z0.shape[0]) == j

    def f(z):
        x = jnp.where(e, t, z)
        return F(x) + 0.5 * jnp.sum(jnp.where(e, z - t, 0.0) ** 2)

    st = minimise(Newton(), Objective(f), jnp.where(e, t, z0), tol, maxiter)
    x = jnp.where(e, t, st.x)
    fx, gx = jax.value_and_grad(F)(x)
    ok = (st.status == int(Status.SUCCESS)) | (
        (st.status == int(Status.PRECISION_LOSS)) & jnp.isfinite(fx)
    )
    return x, fx, gx[j], ok


def _natural_j(spec, dyn, x, j):
    return spec.natural_flat(spec.to_natural(x, dyn))[j]


def _unconstrained_j(spec, dyn, phi, j, v):
    """The unconstrained coordinate ``j`` of the natural vector ``phi`` with ``phi_j = v``."""
    params = spec.from_natural_flat(phi.at[j].set(v), dyn)
    values = tuple(spec.treedef.flatten_up_to(params))
    return spec.to_unconstrained(ParamValues(values, dyn.lows, dyn.highs))[j]


# -- the profile curve --------------------------------------------------------------


def _curve(dyn, data, x_hat, j, grid, tol, maxiter, *, loglik, spec):
    F = _objective(loglik, spec, dyn, data)
    f_hat = F(x_hat)
    phi_hat = spec.natural_flat(spec.to_natural(x_hat, dyn))
    ts = jax.vmap(lambda v: _unconstrained_j(spec, dyn, phi_hat, j, v))(grid)

    def one(t):
        x, fx, _, ok = _inner(F, j, t, x_hat, tol, maxiter)
        return spec.to_natural(x, dyn), -fx, ok & jnp.isfinite(t)

    params, pll, ok = jax.vmap(one)(ts)
    return params, pll, 2.0 * (-f_hat - pll), ok


_curve_jit = model_jit(_curve, "loglik", static_argnames=("spec",))


def _surface(dyn, data, x_hat, ij, grid, tol, maxiter, *, loglik, spec):
    """The profile log-likelihood over pairs ``grid`` (m, 2) of parameters ``ij``:
    the other coordinates re-maximised with both held (Newton, warm-started from the
    estimate, vmapped over the pairs)."""
    F = _objective(loglik, spec, dyn, data)
    phi_hat = spec.natural_flat(spec.to_natural(x_hat, dyn))
    e = (jnp.arange(x_hat.shape[0]) == ij[0]) | (jnp.arange(x_hat.shape[0]) == ij[1])

    def one(vw):
        t0 = _unconstrained_j(spec, dyn, phi_hat, ij[0], vw[0])
        t1 = _unconstrained_j(spec, dyn, phi_hat.at[ij[0]].set(vw[0]), ij[1], vw[1])
        t = jnp.zeros_like(x_hat).at[ij[0]].set(t0).at[ij[1]].set(t1)
        f = lambda z: F(jnp.where(e, t, z)) + 0.5 * jnp.sum(jnp.where(e, z - t, 0.0) ** 2)  # noqa: E731
        st = minimise(Newton(), Objective(f), jnp.where(e, t, x_hat), tol, maxiter)
        fx = F(jnp.where(e, t, st.x))
        ok = (st.status == int(Status.SUCCESS)) | ((st.status == int(Status.PRECISION_LOSS)) & jnp.isfinite(fx))
        return -fx, ok

    pll, ok = jax.vmap(one)(grid)
    return pll, ok, jnp.broadcast_to(-F(x_hat), pll.shape)


_surface_jit = model_jit(_surface, "loglik", static_argnames=("spec",))


def _grid_chunk(n: int) -> int:
    return max(1, -(-n // PROGRESS_UPDATES))


def profile_2d(res, names, grid_x, grid_y, progress=None):
    """The profile log-likelihood of two parameters over the grid ``grid_x x grid_y``
    (natural scale): ``(loglik, deviance, converged)``, each ``(len(grid_y), len(grid_x))``
    (rows follow ``grid_y``, as ``matplotlib.contour`` takes them). The deviance
    ``2 (loglik_hat - loglik)`` compared with a chi-squared(2) quantile (5.99 for
    95%) gives the joint profile-likelihood confidence region. ``progress``: as for
    ``fit_batch`` (:mod:`mlejax.progress`); when on, the grid points run in about
    ``PROGRESS_UPDATES`` calls, each reported."""
    _check_single(res, "profile_2d()")
    i, j = (_index(res, n) for n in names)
    if i == j:
        raise ValueError(f"names={names!r}: give two different parameters.")
    gx, gy = (np.asarray(g, dtype=np.float64) for g in (grid_x, grid_y))
    low, high = (np.asarray(b) for b in res._spec.bounds_flat(res._dyn))
    for g, k in ((gx, i), (gy, j)):
        if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or np.any(g <= low[k]) or np.any(g >= high[k]):
            raise ValueError(f"the grid of {res.names[k]!r} must be a 1-d array of finite values strictly inside "
                             f"its constraint ({low[k]}, {high[k]}).")
    dtype = jnp.result_type(res.loglik)
    xx, yy = np.meshgrid(gx, gy)

    def surface(points):
        return _surface_jit(res._dyn, res._data, jnp.asarray(res.x), jnp.asarray([i, j], jnp.int32),
                            jnp.asarray(points, dtype), _inner_tol(dtype),
                            jnp.asarray(_INNER_MAXITER, jnp.int32), loglik=res._loglik, spec=res._spec)

    points = np.column_stack([xx.ravel(), yy.ravel()])
    pll, ok, top = host_chunks(surface, points, _grid_chunk(len(points)), reporter(progress), "profile 2-D")
    pll = np.asarray(pll).reshape(xx.shape)
    return pll, 2.0 * (float(np.asarray(top)[0]) - pll), np.asarray(ok).reshape(xx.shape)


# -- profile confidence intervals ---------------------------------------------------


class _Search(NamedTuple):
    phase: Any  # 0: expanding the bracket, 1: root-finding inside it
    m: Any  # expansions so far
    it: Any  # root-finding iterations so far
    t_in: Any  # inner end of the bracket: D(t_in) < crit
    z_in: Any  # re-maximised point there (warm start)
    t_out: Any  # outer end: D(t_out) >= crit (once found)
    d_out: Any
    z_out: Any
    t: Any  # latest evaluation
    d: Any
    s: Any  # dD/dt there
    z: Any
    ok: Any  # the latest inner maximisation converged
    found: Any  # a bracket was found
    done: Any


def _one_end(F, f_hat, x_hat, j, side, step, crit, tol, maxiter):
    """The end of the profile interval of coordinate ``j`` on ``side`` (-1 or +1).

    One loop (so the inner fit is compiled once): first expand a bracket
    ``[t_in, t_out]`` with ``D(t_in) < crit <= D(t_out)`` by doubling steps, then
    shrink it by safeguarded Newton steps on ``D(t) - crit`` (bisection when a
    Newton step would leave the bracket). Returns ``(x, crossed, ok, jump)``:
    ``crossed`` is False only when the deviance stays below ``crit`` all the way on
    this side (the end is then the constraint's limit); ``jump`` is True when it
    crosses ``crit`` by a jump (a discontinuous or non-finite profile), and the
    end is then the last point below ``crit``.
    """
    t_hat = x_hat[j]
    # Tolerances in the dtype's own precision: the deviance 2 (f - f_hat) carries the
    # rounding of log-likelihoods of size |f_hat| (float32: 1e-7 of it), and the bracket
    # cannot shrink below the spacing of floats around t.
    eps = jnp.finfo(x_hat.dtype).eps
    noise = 64 * eps * jnp.maximum(jnp.abs(f_hat), 1.0)
    tiny = jnp.maximum(1e-10 * jnp.maximum(crit, 1.0), noise)
    rtol_t = jnp.maximum(1e-13, 8 * eps)

    def cond(s):
        return ~s.done

    def body(s):
        expanding = s.phase == 0
        t_exp = t_hat + side * step * 2.0**s.m
        lo, hi = jnp.minimum(s.t_in, s.t_out), jnp.maximum(s.t_in, s.t_out)
        newton = s.t - (s.d - crit) / s.s
        inside = jnp.isfinite(newton) & (newton > lo) & (newton < hi)
        t_root = jnp.where(inside, newton, 0.5 * (s.t_in + s.t_out))
        t = jnp.where(expanding, t_exp, t_root)
        # warm start from the nearer end of the bracket with a finite deviance
        use_out = ~expanding & jnp.isfinite(s.d_out) & (jnp.abs(t - s.t_out) < jnp.abs(t - s.t_in))
        x, fx, gj, ok = _inner(F, j, t, jnp.where(use_out, s.z_out, s.z_in), tol, maxiter)
        d = 2.0 * (fx - f_hat)
        d = jnp.where(jnp.isnan(d), jnp.inf, d)  # undefined: treat as outside the interval
        sl = jnp.where(jnp.isfinite(d), 2.0 * gj, jnp.nan)
        out = d >= crit
        pick = lambda a, b: jnp.where(out, a, b)  # noqa: E731
        t_in, z_in = pick(s.t_in, t), pick(s.z_in, x)
        t_out, d_out, z_out = pick(t, s.t_out), pick(d, s.d_out), pick(x, s.z_out)
        m = s.m + expanding.astype(jnp.int32)
        it = s.it + (~expanding).astype(jnp.int32)
        found = s.found | (expanding & out)
        give_up = expanding & ~out & ((m >= _N_EXPAND) | ~jnp.isfinite(t))
        close = ~expanding & (jnp.abs(d - crit) <= tiny)
        narrow = found & (jnp.abs(t_out - t_in) <= rtol_t * jnp.maximum(jnp.abs(t), 1.0))
        done = give_up | close | narrow | (it >= _N_ROOT)
        phase = jnp.where(found, 1, 0).astype(jnp.int32)
        return _Search(
            phase, m, it, t_in, z_in, t_out, d_out, z_out, t, d, sl, x, ok, found, done
        )

    zero = jnp.zeros((), x_hat.dtype)
    i0 = jnp.zeros((), jnp.int32)
    false = jnp.zeros((), bool)
    s0 = _Search(
        i0, i0, i0, t_hat, x_hat, t_hat, zero, x_hat, t_hat, zero, zero, x_hat,
        jnp.ones((), bool), false, false,
    )
    s = lax.while_loop(cond, body, s0)
    # A bracket was found: the end is inside it. At a smooth crossing the deviance
    # reaches crit there; otherwise the profile jumps across crit (a discontinuity,
    # or to +inf/NaN) and the end is the last point below crit, flagged. Only when
    # no bracket exists does the deviance stay below crit up to the limit.
    at_crit = s.found & jnp.isfinite(s.d) & (jnp.abs(s.d - crit) <= jnp.maximum(1e-6 * jnp.maximum(crit, 1.0), 4 * noise))
    jump = s.found & ~at_crit
    x = jnp.where(at_crit, s.z, s.z_in)
    return x, s.found, (s.ok & at_crit) | ~s.found | jump, jump


def _intervals(dyn, data, x_hat, ends, crit, tol, maxiter, *, loglik, spec):
    """The interval ends ``ends`` (indices ``2 j`` for parameter ``j``'s low end,
    ``2 j + 1`` for its high end): each end's value, jump flag and convergence."""
    F = _objective(loglik, spec, dyn, data)
    f_hat = F(x_hat)
    h = jax.hessian(F)(x_hat)
    h = 0.5 * (h + h.T)
    # first step: the Wald half-width on the unconstrained scale, or a conditional /
    # unit step when the Hessian cannot be inverted
    cov_diag = jnp.diag(jnp.linalg.inv(h))
    dh = jnp.diag(h)
    se = jnp.where(
        jnp.isfinite(cov_diag) & (cov_diag > 0),
        jnp.sqrt(jnp.abs(cov_diag)),
        jnp.where(dh > 0, 1.0 / jnp.sqrt(jnp.where(dh > 0, dh, 1.0)), 1.0),
    )
    step = 1.2 * jnp.sqrt(crit) * se
    low, high = spec.bounds_flat(dyn)
    js = ends // 2
    sides = jnp.where(ends % 2 == 0, -1.0, 1.0).astype(x_hat.dtype)

    def one(j, side):
        x, found, ok, jump = _one_end(F, f_hat, x_hat, j, side, step[j], crit, tol, maxiter)
        v = _natural_j(spec, dyn, x, j)
        limit = jnp.where(side < 0, low[j], high[j])
        # a "jump" whose last point inside already equals the constraint's limit (the
        # parameter underflowed onto it, where the log-likelihood is undefined) is the
        # deviance staying below crit up to the limit, not a discontinuity
        reached = jump & jnp.isfinite(limit) & (jnp.abs(v - limit) <= 1e-12 * jnp.maximum(jnp.abs(limit), 1.0))
        return jnp.where(found & ~reached, v, limit), jump & ~reached, ok

    return jax.vmap(one)(js, sides)


_intervals_jit = model_jit(_intervals, "loglik", static_argnames=("spec",))


# -- host-side entry points ---------------------------------------------------------


def _check_single(res, what):
    if jnp.ndim(res.loglik) != 0 or isinstance(res.loglik, jax.core.Tracer):
        raise ValueError(
            f"{what} needs a single concrete fit; for a batch of fits, index one out first "
            "(e.g. jax.tree_util.tree_map(lambda a: a[i], batch))."
        )
    if res.nparams == 0:
        raise ValueError(f"{what}: the fit has no free parameters.")
    if not bool(res.converged) and int(res.status) != Status.NOT_IDENTIFIED:
        warnings.warn(
            f"{what}: the fit did not converge ({Status(int(res.status)).name}); the profile "
            "is measured from a point that may not be the maximum. Refit first.",
            ConvergenceWarning,
            stacklevel=4,
        )


def _index(res, name) -> int:
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if not 0 <= int(name) < res.nparams:
            raise ValueError(
                f"name={name} is out of range: the fit has {res.nparams} free parameters."
            )
        return int(name)
    if not isinstance(name, str):
        raise TypeError(f"name must be a parameter name such as {res.names[0]!r}; got {name!r}.")
    if name in res.names:
        return res.names.index(name)
    hint = [n for n in res.names if n.startswith(name + "[")]
    more = f" {name!r} is an array; name one element, e.g. {hint[0]!r}." if hint else ""
    raise ValueError(
        f"name={name!r} is not a free parameter of this fit;{more} free parameters: "
        f"{', '.join(res.names)}."
    )


def profile(res, name, grid, progress=None) -> Profile:
    """The profile log-likelihood of parameter ``name`` over ``grid`` (natural scale);
    ``progress`` as for :func:`profile_2d`."""
    _check_single(res, "profile()")
    j = _index(res, name)
    dtype = jnp.result_type(res.loglik)
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError(
            f"grid must be a non-empty 1-d array of finite values of {res.names[j]!r}; "
            f"got shape {g.shape}."
        )
    low, high = (np.asarray(b) for b in res._spec.bounds_flat(res._dyn))
    if np.any(g <= low[j]) or np.any(g >= high[j]):
        raise ValueError(
            f"grid values for {res.names[j]!r} must lie strictly inside its constraint "
            f"({low[j]}, {high[j]}); got min {g.min()}, max {g.max()}."
        )

    def curve(values):
        return _curve_jit(res._dyn, res._data, jnp.asarray(res.x), jnp.asarray(j, jnp.int32),
                          jnp.asarray(values, dtype), _inner_tol(dtype),
                          jnp.asarray(_INNER_MAXITER, jnp.int32), loglik=res._loglik, spec=res._spec)

    params, pll, dev, ok = host_chunks(curve, g, _grid_chunk(g.size), reporter(progress), "profile")
    return Profile(res.names[j], jnp.asarray(g, dtype), jnp.asarray(pll), jnp.asarray(dev),
                   jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(ok))


def profile_bounds(res, level, progress=None):
    """Profile-likelihood interval ends, a (k, 2) array over the free parameters.
    ``progress``: as for :func:`profile_2d`; when on, one call per parameter."""
    _check_single(res, "conf_int(method='profile')")
    from jax.scipy.special import ndtri

    dtype = jnp.result_type(res.loglik)
    crit = float(ndtri(0.5 + float(level) / 2.0)) ** 2  # chi2(1) quantile

    def intervals(which):
        return _intervals_jit(res._dyn, res._data, jnp.asarray(res.x), jnp.asarray(which, jnp.int32),
                              jnp.asarray(crit, dtype), _inner_tol(dtype),
                              jnp.asarray(_INNER_MAXITER, jnp.int32), loglik=res._loglik, spec=res._spec)

    k = res.nparams
    ends, jump, ok = host_chunks(intervals, np.arange(2 * k), 2, reporter(progress), "profile intervals")
    ends, jump, ok = (np.array(a).reshape(k, 2) for a in (ends, jump, ok))
    if not np.all(ok):
        bad = sorted({res.names[i] for i in np.nonzero(~ok.all(axis=1))[0]})
        warnings.warn(
            f"profile interval for {', '.join(bad)}: the re-maximisation over the other "
            "parameters did not converge at an end; that end is NaN. Check the fit "
            "(res.message) or reparametrise.",
            HessianWarning,
            stacklevel=3,
        )
        ends = np.where(ok, ends, np.nan)
    jump = np.asarray(jump) & ok
    if np.any(jump):
        where = ", ".join(
            f"{res.names[i]} {'low' if s == 0 else 'high'} end {ends[i, s]:.6g}" for i, s in zip(*np.nonzero(jump))
        )
        warnings.warn(
            f"profile interval: the profile deviance jumps across the cut-off ({where}): the "
            "log-likelihood is not continuous there (a step, a kink, or a region where it is "
            "-inf/NaN). The end reported is the last value inside the interval; check the "
            "model there (res.profile(name, grid) shows the curve).",
            HessianWarning,
            stacklevel=3,
        )
    return ends


def profile_conf_int(res, level, progress=None):
    """``conf_int(level, method="profile")``: a pytree like ``params`` of (low, high)."""
    ends = jnp.asarray(profile_bounds(res, level, progress), jnp.result_type(res.loglik))
    nan_dyn = res._dyn._replace(values=tuple(jnp.full_like(v, jnp.nan) for v in res._dyn.values))
    lo = res._spec.from_natural_flat(ends[:, 0], nan_dyn)
    hi = res._spec.from_natural_flat(ends[:, 1], nan_dyn)
    return jax.tree_util.tree_map(lambda a, b: (a, b), lo, hi)
