"""Multi-start fits: the starting points, the summary of the maxima they reach, the flags.

``starts=`` (``mj.fit``, ``mj.curve_fit``) is resolved here into a stack of starting
values (one per start, on the natural scale, the constraints of ``init``); the fits
from all of them run as one vmapped, compiled call (:mod:`mlejax.backends._starts`).
What they found is summarised by :func:`summarise` into a :class:`StartsSummary`:
how many converged, the distinct maxima (distinct beyond numerical tolerance in the
parameters and the log-likelihood), each one's log-likelihood and how many starts
reached it, and two flags with a :class:`LocalOptimaWarning`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ._constraints import FIXED, _check_start, _leaf_label
from ._status import MLEJaxWarning, warn_at_caller

# Drawn starts: ``u0 + STARTS_SPREAD * max(1, |u0|) * z``, z ~ N(0, 1), per coordinate of
# the optimiser's (unconstrained) scale u; u0 is ``init`` there (a log for mj.Positive, a
# logit for mj.Bounded).
STARTS_SPREAD = 1.0
# Two converged starts reached the same maximum when every parameter differs by at most
# SAME_SE standard errors (SAME_RTOL * max(1, |value|) where a standard error is missing)
# and the log-likelihoods by at most LOGLIK_RTOL * max(1, |loglik|).
SAME_SE = 1e-3
SAME_RTOL = 1e-6
# Distinct maxima whose log-likelihoods differ by at most this much (relative, as above)
# are a tie: the data do not choose between them.
LOGLIK_RTOL = 1e-6

_HOW = ("pass starts=16 (init and 15 starts drawn around it; with key=jax.random.key(0)), a "
        "function key -> init (with key=jax.random.split(jax.random.key(0), 16), one start per "
        "key), or a pytree like init whose leaves are stacked along a leading axis (one row "
        "per start)")


class LocalOptimaWarning(MLEJaxWarning):
    """A multi-start fit found evidence of local optima a single fit cannot see: the best
    maximum was reached by only one start (a higher one may have been missed), or distinct
    maxima tie in log-likelihood (label switching, or parameters the data do not identify)."""


@dataclasses.dataclass(frozen=True)
class Maximum:
    """One distinct maximum reached by a multi-start fit."""

    loglik: float
    n_starts: int  # how many starts reached it
    params: tuple  # the free parameters (natural scale, in the order of ``names``) from ``start``
    start: int  # the first start (lowest index) that reached it


@dataclasses.dataclass(frozen=True)
class StartsSummary:
    """What the starts of a multi-start fit found (``res.starts``; an immutable value).

    Attributes:
        n_starts: starts run. n_converged: starts whose fit converged (status
            ``SUCCESS``: a strict local maximum, gradient zero); only those count as
            maxima. (``mj.fit``'s host-side smoothness check runs on the returned fit
            only, which may then report ``NOT_SMOOTH``.)
        maxima: the distinct maxima, best first (:class:`Maximum`: ``loglik``,
            ``n_starts`` reaching it, ``params`` and the index ``start`` of the first
            start that reached it); maxima tied with the highest one come first in
            the order of their first start, so the fit returned is, among tied maxima,
            the one the earliest start (``init`` itself for ``starts=S``) reached.
            Two starts reached the same maximum when their parameters differ by at
            most 1e-3 standard errors and their log-likelihoods by at most 1e-6
            (relative).
        best: the index of the start whose fit is returned (-1 if none converged;
            the returned fit is then the highest finite one, flagged as not converged).
        single_start_best: the best maximum was reached by one start only (of
            several): a higher maximum may exist that no start found.
            Fix: run more starts (``starts=64``), or spread them differently
            (``starts=`` a function or a stack of starts).
        near_tie: another distinct maximum has a log-likelihood within 1e-6
            (relative) of the best one. Causes: label switching (the components of a
            mixture, or any exchangeable parameters, permuted: the same model), or a
            parameter the data do not identify beyond a discrete choice (a sign, a
            period).
            Fix: impose an order (e.g. ``mu1 < mu2`` by a reparametrisation), fix the
            sign, or report all the tied maxima.
        higher_unconverged: a start that did not converge (``MAX_ITER``, say) ended
            at a higher log-likelihood than the best maximum (beyond the tie
            tolerance): a higher maximum may exist that no start reached, or the
            likelihood rises without bound. The fit returned is still the best
            converged one. Fix: a larger ``maxiter``, ``method="trust-region"``, or
            look at that start's end.
        names: the parameter names, for ``params`` of the maxima.
    """

    n_starts: int
    n_converged: int
    maxima: tuple
    best: int
    single_start_best: bool
    near_tie: bool
    names: tuple = ()
    tie_tol: float = 0.0  # log-likelihoods of maxima closer than this to the best one tie
    higher_unconverged: bool = False
    best_unconverged: float = float("nan")  # the highest log-likelihood of a start that did not converge

    @property
    def n_maxima(self) -> int:
        return len(self.maxima)

    @property
    def logliks(self) -> tuple:
        """The log-likelihood of each distinct maximum, best first."""
        return tuple(m.loglik for m in self.maxima)

    @property
    def counts(self) -> tuple:
        """How many starts reached each distinct maximum, best first."""
        return tuple(m.n_starts for m in self.maxima)

    @property
    def flagged(self) -> bool:
        return self.single_start_best or self.near_tie or self.higher_unconverged

    def notes(self) -> list[str]:
        """The flags in words (empty when none is set)."""
        out = []
        if self.single_start_best:
            out.append(
                f"the best maximum was reached by only 1 of {self.n_starts} starts: a higher one may "
                "exist that no start found; run more starts (e.g. starts=64)")
        if self.near_tie:
            ties = [m for m in self.maxima[1:] if abs(m.loglik - self.maxima[0].loglik) <= self.tie_tol]
            out.append(
                f"{len(ties) + 1} distinct maxima have the same log-likelihood "
                f"({self.maxima[0].loglik:.10g}): label switching or parameters the data do not "
                "identify; impose an order or fix a sign, or report all of them (res.starts.maxima)")
        if self.higher_unconverged:
            out.append(
                f"a start that did not converge reached a higher log-likelihood ({self.best_unconverged:.10g}) "
                f"than the best maximum ({self.maxima[0].loglik:.10g}): a higher maximum may exist, or the "
                "likelihood is unbounded; raise maxiter or try method='trust-region'")
        return out

    def __str__(self) -> str:
        lines = [f"{self.n_starts} starts, {self.n_converged} converged, {self.n_maxima} distinct maxima"]
        lines += [f"  loglik {m.loglik:.10g}: {m.n_starts} start{'s' if m.n_starts != 1 else ''}"
                  for m in self.maxima]
        lines += [f"  note: {n}" for n in self.notes()]
        return "\n".join(lines)


def summarise(loglik, converged, phi, se=None, names=(), *, loglik_atol=0.0, phi_atol=0.0) -> StartsSummary:
    """The distinct maxima among the converged starts (host numpy).

    ``loglik``/``converged``: ``(S,)``; ``phi``: ``(S, k)`` free parameters, or any
    ``(S, m)`` fingerprint of the fitted model (a mixture's log-densities: permuted
    labels give the same fingerprint); ``se``: ``(S, k)`` standard errors (None: the
    relative tolerance alone). ``loglik_atol``/``phi_atol``: absolute tolerances that
    widen the relative ones, for optimisers that stop further from the maximum (EM).
    Starts are grouped greedily, best first, each joining the first maximum it matches.
    """

    def tied(a, b):
        return abs(a - b) <= max(LOGLIK_RTOL * max(1.0, abs(b)), loglik_atol)

    def same(i, r):
        scale = np.maximum(SAME_RTOL * np.maximum(1.0, np.abs(phi[r])), phi_atol)
        tol = np.where(np.isfinite(se[r]) & (se[r] > 0), SAME_SE * se[r], scale)
        return tied(ll[i], ll[r]) and bool(np.all(np.abs(phi[i] - phi[r]) <= tol))

    ll = np.asarray(loglik, dtype=float)
    ok = np.asarray(converged, dtype=bool) & np.isfinite(ll)
    phi = np.asarray(phi, dtype=float).reshape(ll.shape[0], -1)
    se = np.full_like(phi, np.nan) if se is None else np.asarray(se, dtype=float).reshape(phi.shape)
    reps, members = [], []
    for i in sorted(np.flatnonzero(ok), key=lambda i: -ll[i]):
        for j, r in enumerate(reps):
            if same(i, r):
                members[j].append(i)
                break
        else:
            reps.append(i)
            members.append([i])
    firsts = [min(m) for m in members]  # each maximum as its first start reached it
    maxima = [Maximum(float(ll[f]), len(m), tuple(float(v) for v in phi[f]), int(f)) for f, m in zip(firsts, members)]
    # Maxima tied with the highest one (label switching) come first in start order, so the
    # fit returned is the one the earliest start (init itself) reached, in its labelling.
    top = max((m.loglik for m in maxima), default=0.0)
    maxima = tuple(sorted(maxima, key=lambda m: (0, m.start) if tied(m.loglik, top) else (1, -m.loglik)))
    tie_tol = max(LOGLIK_RTOL * max(1.0, abs(maxima[0].loglik)), loglik_atol) if maxima else 0.0
    failed = ~np.asarray(converged, dtype=bool) & np.isfinite(ll)
    best_failed = float(ll[failed].max()) if failed.any() else float("nan")
    return StartsSummary(
        n_starts=int(ll.shape[0]),
        n_converged=int(ok.sum()),
        maxima=maxima,
        best=maxima[0].start if maxima else -1,
        single_start_best=bool(maxima) and maxima[0].n_starts == 1 and ll.shape[0] > 1,
        near_tie=any(tied(m.loglik, maxima[0].loglik) for m in maxima[1:]),
        names=tuple(names),
        tie_tol=tie_tol,
        higher_unconverged=bool(maxima) and best_failed > maxima[0].loglik + tie_tol,
        best_unconverged=best_failed,
    )


def best_start(loglik, converged) -> int:
    """The start to report: the highest converged one, else the highest finite one."""
    ll = np.asarray(loglik, dtype=float)
    ok = np.asarray(converged, dtype=bool) & np.isfinite(ll)
    rank = np.where(ok, ll, -np.inf) if ok.any() else np.where(np.isfinite(ll), ll, -np.inf)
    return int(np.argmax(rank))


def warn_starts(summary: StartsSummary | None) -> None:
    """The :class:`LocalOptimaWarning` of a multi-start fit whose flags are set."""
    if summary is not None and summary.flagged:
        warn_at_caller("; ".join(summary.notes()) + ". See res.starts.", LocalOptimaWarning)


# -- the starting points ---------------------------------------------------------------------


def check_key(key, what: str):
    """``key`` as a ``jax.random`` key (or a stack of them); refuses a missing one and a number."""
    if key is None:
        raise ValueError(f"{what} needs key=, e.g. key=jax.random.key(0); or {_HOW}.")
    if isinstance(key, (bool, int, float, np.integer, np.floating)):
        raise TypeError(f"key={key!r} is a number; pass a jax.random key, e.g. key=jax.random.key({key}).")
    return key


def key_stack(key):
    """``key`` for ``starts=<function>``: a stack of ``jax.random`` keys, one per start."""
    keys = check_key(key, "starts=<function>")
    single = jnp.ndim(keys) == 0 or (jnp.ndim(keys) == 1 and not jax.dtypes.issubdtype(
        jnp.result_type(keys), jax.dtypes.prng_key))
    if single:
        raise ValueError("starts=<function> runs the function once per key: pass a stack of keys, e.g. "
                         "key=jax.random.split(jax.random.key(0), 16) for 16 starts.")
    return keys


def _is_count(starts) -> bool:
    return isinstance(starts, (int, np.integer)) and not isinstance(starts, bool)


def start_values(starts, key, spec, dyn) -> tuple:
    """The starting values of every start: one array per leaf of ``init`` with a leading
    axis of length S (fixed leaves repeated), validated against ``init``'s constraints.

    ``starts``: a number S (``init`` itself and S - 1 draws around it, see
    ``STARTS_SPREAD``; needs ``key``), a function ``key -> init`` (vmapped over the stack
    of keys ``key``), or a pytree like ``init`` with stacked leaves.
    """
    if isinstance(starts, bool) or isinstance(starts, (float, np.floating)):
        raise TypeError(f"starts={starts!r} is not a number of starts; {_HOW}.")
    if _is_count(starts):
        if starts < 1:
            raise ValueError(f"starts={starts} must be at least 1; {_HOW}.")
        return _drawn(int(starts), check_key(key, f"starts={starts}"), spec, dyn)
    if callable(starts):
        return _stacked(jax.vmap(starts)(key_stack(key)), spec, dyn, "the stack returned by starts(key)")
    return _stacked(starts, spec, dyn, "starts")


def _drawn(n, key, spec, dyn) -> tuple:
    u0 = spec.to_unconstrained(dyn)
    z = jax.random.normal(key, (n - 1, u0.shape[0]), u0.dtype)
    u = jnp.concatenate([u0[None], u0 + STARTS_SPREAD * jnp.maximum(1.0, jnp.abs(u0)) * z])
    params = jax.vmap(lambda x: spec.to_natural(x, dyn))(u)
    return tuple(spec.treedef.flatten_up_to(params))  # vmap stacks fixed leaves too


def _stacked(starts, spec, dyn, what) -> tuple:
    try:
        leaves = spec.treedef.flatten_up_to(starts)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{what} does not have the structure of init ({spec.treedef}): {e}. {_HOW[0].upper() + _HOW[1:]}."
        ) from None
    dtype = dyn.values[0].dtype
    out, n = [], None
    for leaf, kind, shape, name, v0, lo, hi in zip(leaves, spec.kinds, spec.shapes, spec.leaf_names,
                                                  dyn.values, dyn.lows, dyn.highs):
        a = np.asarray(leaf, dtype)
        where = _leaf_label(name) or " (the parameter)"
        if a.ndim != len(shape) + 1 or a.shape[1:] != tuple(shape):
            raise ValueError(
                f"{what}{where} has shape {a.shape}; a stack of starts needs shape (n_starts,) + "
                f"{tuple(shape)} (init's shape with a leading axis, one row per start).")
        if n is not None and a.shape[0] != n:
            raise ValueError(f"{what}: the leaves disagree on the number of starts ({n} and {a.shape[0]} "
                             f"at{where}); stack the same number of starts in every leaf.")
        n = a.shape[0]
        if n < 1:
            raise ValueError(f"{what} holds no starts (leading axis of length 0); {_HOW}.")
        if kind == FIXED:
            a = np.broadcast_to(np.asarray(v0, dtype), a.shape)  # a fixed leaf keeps init's value
        else:
            try:
                _check_start(name, where, kind, a, np.asarray(lo), np.asarray(hi))
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from None
        out.append(jnp.asarray(a))
    return tuple(out)


__all__ = ["LocalOptimaWarning", "Maximum", "StartsSummary"]
