"""Constraint markers and the map between natural and unconstrained parameters.

A user marks a leaf of the starting-value pytree, e.g. ``{"sigma": Positive(1.0)}``.
:func:`parametrize` turns such a pytree into a static :class:`ParamSpec` (structure,
names, one transform per leaf) and a dynamic :class:`ParamValues` (starting values,
bounds and fixed values as arrays, so new numbers never trigger a recompile).
The optimiser sees one flat unconstrained vector; everything reported is on the
natural scale.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Constraint", "Positive", "Bounded", "Fixed", "ParamSpec", "ParamValues", "parametrize"]


class Constraint:
    """Base class of the markers that wrap a starting value in ``init``."""

    value: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Positive(Constraint):
    """A parameter that must be strictly positive (a scale, a rate, a variance).

    The optimiser works on ``log(value)``; estimates and standard errors are
    reported for ``value`` itself (delta method).
    """

    value: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Bounded(Constraint):
    """A parameter in the open interval ``(low, high)``.

    One-sided bounds are allowed: ``Bounded(2.0, jnp.inf, 5.0)`` keeps a value
    above 2. The optimiser works on ``logit((value - low) / (high - low))``
    (or a log for one-sided bounds). ``value`` defaults to the midpoint.
    """

    low: Any
    high: Any
    value: Any = None


@dataclasses.dataclass(frozen=True, eq=False)
class Fixed(Constraint):
    """A parameter held at ``value``: not estimated, no standard error (NaN).

    Fitting a restricted model for a likelihood-ratio test is ``Fixed(0.0)``.
    ``mask`` (a boolean array broadcastable to ``value``'s shape, True = held) holds
    only part of a vector parameter: the other entries are estimated, unconstrained,
    starting from ``value``. So one coefficient of ``beta`` can be tested by a
    likelihood-ratio test without splitting ``beta`` into separate leaves.

    Examples:
        >>> import numpy as np, jax.numpy as jnp, mlejax as mj
        >>> rng = np.random.default_rng(0)
        >>> X = np.column_stack([np.ones(200), rng.normal(size=(200, 2))])
        >>> y = X @ np.array([1.0, 2.0, 0.0]) + rng.normal(size=200)
        >>> def ll(p, d):
        ...     return jnp.sum(-0.5 * (d[1] - d[0] @ p["beta"]) ** 2)
        >>> full = mj.fit(ll, {"beta": jnp.zeros(3)}, (X, y))
        >>> held = mj.fit(ll, {"beta": mj.Fixed(jnp.zeros(3), mask=[False, False, True])}, (X, y))
        >>> held.names, bool(np.isnan(held.stderr["beta"][2]))
        (('beta[0]', 'beta[1]'), True)
        >>> bool(mj.lrt(full, held).pvalue > 0.05)
        True
    """

    value: Any
    mask: Any = None


def is_marker(x) -> bool:
    return isinstance(x, Constraint)


# Transform kinds. "lower" is low + exp(u), "upper" is high - exp(-u),
# "interval" is low + (high - low) * sigmoid(u).
FREE, LOWER, UPPER, INTERVAL, FIXED = "free", "lower", "upper", "interval", "fixed"
# Bounds only known at run time (traced, e.g. under jax.vmap): each element takes the
# interval, lower, upper or free transform by which of its bounds are finite.
TRACED = "traced"


def default_float_dtype():
    """float64 when the user enabled x64, float32 otherwise; mlejax never changes it."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def _sigmoid(u, xp):
    if xp is jnp:
        return jax.nn.sigmoid(u)
    e = xp.exp(-xp.abs(u))  # stable on the host too
    return xp.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _forward(kind, u, low, high, xp=jnp):
    if kind == FREE:
        return u
    if kind == LOWER:
        return low + xp.exp(u)
    if kind == UPPER:
        return high - xp.exp(-u)
    if kind == INTERVAL:
        return low + (high - low) * _sigmoid(u, xp)
    if kind == TRACED:
        lo_f, hi_f, lo, hi = _finite_parts(low, high)
        one = lambda c: jnp.where(c, u, 0.0)  # noqa: E731  (no overflow in unused branches)
        return jnp.where(lo_f & hi_f, lo + (hi - lo) * jax.nn.sigmoid(one(lo_f & hi_f)),
                         jnp.where(lo_f, lo + jnp.exp(one(lo_f & ~hi_f)),
                                   jnp.where(hi_f, hi - jnp.exp(-one(hi_f & ~lo_f)), u)))
    raise AssertionError(kind)


def _finite_parts(low, high):
    lo_f, hi_f = jnp.isfinite(low), jnp.isfinite(high)
    return lo_f, hi_f, jnp.where(lo_f, low, 0.0), jnp.where(hi_f, high, jnp.where(lo_f, low, 0.0) + 1.0)


def _forward_derivatives(kind, u, low, high, xp=jnp):
    """First and second derivatives of :func:`_forward` in ``u`` (elementwise)."""
    if kind == FREE:
        return xp.ones_like(u), xp.zeros_like(u)
    if kind == LOWER:
        e = xp.exp(u)
        return e, e
    if kind == UPPER:
        e = xp.exp(-u)
        return e, -e
    if kind == INTERVAL:
        s = _sigmoid(u, xp)
        d1 = (high - low) * s * (1.0 - s)
        return d1, d1 * (1.0 - 2.0 * s)
    if kind == TRACED:  # per element: the transform its finite bounds select
        lo_f, hi_f, lo, hi = _finite_parts(low, high)
        both, only_lo, only_hi = lo_f & hi_f, lo_f & ~hi_f, hi_f & ~lo_f
        s = jax.nn.sigmoid(jnp.where(both, u, 0.0))
        d1 = (hi - lo) * s * (1.0 - s)
        e_lo, e_hi = jnp.exp(jnp.where(only_lo, u, 0.0)), jnp.exp(-jnp.where(only_hi, u, 0.0))
        first = jnp.where(both, d1, jnp.where(only_lo, e_lo, jnp.where(only_hi, e_hi, 1.0)))
        second = jnp.where(both, d1 * (1.0 - 2.0 * s), jnp.where(only_lo, e_lo, jnp.where(only_hi, -e_hi, 0.0)))
        return first, second
    raise AssertionError(kind)


def _inverse(kind, x, low, high, xp=jnp):
    if kind == FREE:
        return x
    if kind == LOWER:
        return xp.log(x - low)
    if kind == UPPER:
        return -xp.log(high - x)
    if kind == INTERVAL:
        t = (x - low) / (high - low)
        return xp.log(t) - xp.log1p(-t)
    if kind == TRACED:
        lo_f, hi_f, lo, hi = _finite_parts(low, high)
        both = lo_f & hi_f
        t = jnp.where(both, (x - lo) / (hi - lo), 0.5)
        return jnp.where(both, jnp.log(t) - jnp.log1p(-t),
                         jnp.where(lo_f, jnp.log(jnp.where(lo_f, x - lo, 1.0)),
                                   jnp.where(hi_f, -jnp.log(jnp.where(hi_f, hi - x, 1.0)), x)))
    raise AssertionError(kind)


class ParamValues(NamedTuple):
    """The dynamic half of a parametrisation: one array per leaf."""

    values: tuple  # natural-scale starting values (or fixed values)
    lows: tuple
    highs: tuple


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """The static half of a parametrisation (hashable: part of the jit cache key)."""

    treedef: Any
    kinds: tuple
    shapes: tuple
    leaf_names: tuple
    names: tuple  # one per free scalar parameter, e.g. "beta[2]"
    order: tuple = ()  # indices into names in the user's order (dict insertion order)
    # per leaf: None, or the flat indices of its free entries (a leaf partly held by
    # ``Fixed(value, mask=...)``; its held entries keep their values in ParamValues)
    masks: tuple = ()
    # per leaf: the exponent ``u`` of a power-of-two unit, or empty (all 0): natural =
    # ``2**u`` times the transform's value. A fit made on rescaled data (``mj.fit_dist``
    # on data of extreme magnitude, mlejax/dist/_scale.py) reports natural values in the
    # data's units while its unconstrained coordinates stay those of the rescaled,
    # well-scaled problem, so profiles and refits never work with numbers like 1e150.
    units: tuple = ()

    def _unit(self, i) -> float:
        return 2.0 ** self.units[i] if self.units else 1.0

    def _free_idx(self, i):
        return self.masks[i] if self.masks else None

    @property
    def display_order(self) -> tuple:
        """Indices of ``names`` in the order the user wrote them (JAX sorts dict keys)."""
        return self.order or tuple(range(len(self.names)))

    @property
    def free(self) -> tuple:
        return tuple(k != FIXED for k in self.kinds)

    @property
    def nparams(self) -> int:
        return len(self.names)

    @property
    def is_identity(self) -> bool:
        """True when every leaf is free and unconstrained (natural = optimiser scale)."""
        return all(k == FREE for k in self.kinds) and not any(self.units)

    # -- flat vectors over the free leaves -------------------------------------------
    # Every method takes the array namespace ``xp``: ``jax.numpy`` inside compiled
    # code (the default), ``numpy`` where a fit is driven on the host.
    def _flatten(self, leaves, xp=jnp):
        parts = []
        for j, (x, f) in enumerate(zip(leaves, self.free)):
            if f:
                idx = self._free_idx(j)
                parts.append(xp.ravel(x) if idx is None else xp.ravel(x)[np.asarray(idx, int)])
        if not parts:
            return xp.zeros((0,), default_float_dtype())
        return xp.concatenate(parts)

    def _split(self, flat, fill=None):
        """Flat free vector -> one array per leaf (None for fixed leaves); a leaf partly
        held takes its held entries from ``fill`` (the ParamValues values; 0 without)."""
        out, i = [], 0
        for j, (shape, f) in enumerate(zip(self.shapes, self.free)):
            idx = self._free_idx(j)
            if not f:
                out.append(None)
            elif idx is None:
                n = math.prod(shape)
                out.append(flat[i : i + n].reshape(shape))
                i += n
            else:
                base = jnp.zeros(shape, flat.dtype) if fill is None else jnp.broadcast_to(fill[j], shape).astype(flat.dtype)
                seg = flat[i : i + len(idx)]
                out.append(jnp.ravel(base).at[np.asarray(idx, int)].set(seg).reshape(shape))
                i += len(idx)
        return out

    def unflatten_leaves(self, leaves):
        return jax.tree_util.tree_unflatten(self.treedef, list(leaves))

    def to_unconstrained(self, dyn: ParamValues, xp=jnp):
        leaves = []
        for i, (k, v, lo, hi) in enumerate(zip(self.kinds, dyn.values, dyn.lows, dyn.highs)):
            c = self._unit(i)
            if c != 1.0:
                v, lo, hi = v / c, lo / c, hi / c
            leaves.append(_inverse(k, v, lo, hi, xp) if k != FIXED else None)
        return self._flatten(leaves, xp)

    def to_natural(self, u, dyn: ParamValues, xp=jnp):
        """Flat unconstrained vector -> natural-scale parameter pytree."""
        leaves = []
        for i, (k, x, v, lo, hi) in enumerate(zip(self.kinds, self._split(u, dyn.values), dyn.values, dyn.lows,
                                                  dyn.highs)):
            c = self._unit(i)
            if k == FIXED:
                leaves.append(v)
            else:
                leaves.append(_forward(k, x, lo, hi, xp) if c == 1.0 else _forward(k, x, lo / c, hi / c, xp) * c)
        return self.unflatten_leaves(leaves)

    def transform_derivatives(self, u, dyn: ParamValues, xp=jnp):
        """Flat first and second derivatives of the natural free parameters in the
        unconstrained ones (every transform is elementwise)."""
        d1, d2 = [], []
        for i, (k, x, lo, hi) in enumerate(zip(self.kinds, self._split(u), dyn.lows, dyn.highs)):
            c = self._unit(i)
            if k == FIXED:
                a = b = None
            elif c == 1.0:
                a, b = _forward_derivatives(k, x, lo, hi, xp)
            else:
                a, b = (d * c for d in _forward_derivatives(k, x, lo / c, hi / c, xp))
            d1.append(a)
            d2.append(b)
        return self._flatten(d1, xp), self._flatten(d2, xp)

    def natural_flat(self, params, xp=jnp):
        """Natural-scale pytree -> flat vector of its free parameters."""
        return self._flatten(self.treedef.flatten_up_to(params), xp)

    def from_natural_flat(self, phi, dyn: ParamValues):
        """Flat natural vector of the free parameters -> pytree (fixed leaves filled in)."""
        leaves = [v if x is None else x for x, v in zip(self._split(phi, dyn.values), dyn.values)]
        return self.unflatten_leaves(leaves)

    def leaf_mask(self, fill_free, fill_fixed):
        """A params-shaped pytree with ``fill_free`` on free leaves and ``fill_fixed`` on fixed."""
        leaves = []
        for j, (s, f) in enumerate(zip(self.shapes, self.free)):
            idx = self._free_idx(j)
            if f and idx is not None:
                held = np.ones(math.prod(s), bool)
                held[list(idx)] = False
                leaves.append(jnp.where(held.reshape(s), fill_fixed(s), fill_free(s)))
            else:
                leaves.append(fill_free(s) if f else fill_fixed(s))
        return self.unflatten_leaves(leaves)

    def bounds_flat(self, dyn: ParamValues, xp=jnp):
        """Flat (low, high) of the free parameters on the natural scale (+-inf where open)."""
        lows, highs = [], []
        for k, lo, hi, s in zip(self.kinds, dyn.lows, dyn.highs, self.shapes):
            inf = xp.full(s, xp.inf, xp.result_type(lo))
            lows.append(xp.broadcast_to(lo, s) if k in (LOWER, INTERVAL, TRACED) else -inf)
            highs.append(xp.broadcast_to(hi, s) if k in (UPPER, INTERVAL, TRACED) else inf)
        return self._flatten(lows, xp), self._flatten(highs, xp)


# -- building a parametrisation from a user's init ---------------------------------


def path_name(path) -> str:
    """Render a pytree key path as ``scale.sigma`` / ``beta`` / ``theta[1]``."""
    out = ""
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            out += ("." if out else "") + str(key.key)
        elif isinstance(key, jax.tree_util.GetAttrKey):
            out += ("." if out else "") + key.name
        elif isinstance(key, jax.tree_util.SequenceKey):
            out += ("" if out else "theta") + f"[{key.idx}]"
        else:  # FlattenedIndexKey and custom keys
            out += ("" if out else "theta") + f"[{getattr(key, 'key', key)}]"
    return out or "theta"


def element_names(leaf_name: str, shape, free_idx=None) -> list[str]:
    """The names of a leaf's scalar parameters (only the entries ``free_idx``, flat
    indices, of a leaf partly held fixed)."""
    if shape == ():
        return [leaf_name]
    names = [f"{leaf_name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]
    return names if free_idx is None else [names[i] for i in free_idx]


def _fixed_mask(leaf, value, where):
    """``Fixed(value, mask=...)``: the leaf's kind (FIXED, FREE) and, when only part of it
    is held, the flat indices of its free entries."""
    if leaf.mask is None:
        return FIXED, None
    m = np.asarray(leaf.mask)
    if m.dtype != np.bool_:
        raise TypeError(f"init{where}: Fixed(mask=...) must be booleans (True = held fixed); got dtype {m.dtype}.")
    try:
        m = np.broadcast_to(m, value.shape)
    except ValueError:
        raise ValueError(f"init{where}: Fixed mask of shape {m.shape} does not broadcast to the value's shape "
                         f"{value.shape}.") from None
    if m.all():
        return FIXED, None
    free = tuple(int(i) for i in np.flatnonzero(~m.ravel()))
    return FREE, (None if len(free) == m.size else free)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_float_array(x, where: str, dtype):
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"init{where} is {x!r}; every starting value must be a number or an array of numbers."
        )
    # Concrete values stay numpy on the host (no device round trips or tiny compiles
    # before the one compiled fit); traced values (vmap over init) stay traced.
    xp = np if _is_concrete(x) else jnp
    try:
        arr = xp.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"init{where} has type {type(x).__name__}; every starting value must be a number "
            "or an array of numbers (wrap it in mj.Positive / mj.Bounded / mj.Fixed as needed)."
        ) from e
    if arr.dtype == object or not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_):
        raise TypeError(f"init{where} has dtype {arr.dtype}; starting values must be numeric.")
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"init{where} is complex; mlejax estimates real parameters.")
    # Integer starting values are cast to float (documented): gradients need floats.
    return arr.astype(dtype)


def _leaf_label(leaf_name: str) -> str:
    return "" if leaf_name == "theta" else f" leaf {leaf_name!r}"


def parametrize(init) -> tuple[ParamSpec, ParamValues]:
    """Split a marked starting-value pytree into a static spec and dynamic values.

    Raises ``TypeError`` / ``ValueError`` naming the leaf for starting values that
    are not numbers, not finite, or outside their constraint.
    """
    dtype = default_float_dtype()
    if type(init).__module__.split(".")[0] == "pandas" and hasattr(init, "index") and not hasattr(init, "columns"):
        init = {str(k): v for k, v in init.items()}  # a pandas Series: one parameter per label
    flat, treedef = jax.tree_util.tree_flatten_with_path(init, is_leaf=is_marker)
    if not flat:
        raise ValueError("init has no parameters: pass a number, an array or a pytree of them.")
    kinds, shapes, leaf_names, names, values, lows, highs, masks = [], [], [], [], [], [], [], []
    for path, leaf in flat:
        name = path_name(path)
        where = _leaf_label(name)
        low = high = free_idx = None
        if isinstance(leaf, Fixed):
            value = _as_float_array(leaf.value, where, dtype)
            kind, free_idx = _fixed_mask(leaf, value, where)
        elif isinstance(leaf, Positive):
            value, kind = _as_float_array(leaf.value, where, dtype), LOWER
            low, high = np.zeros((), dtype), np.asarray(np.inf, dtype)
        elif isinstance(leaf, Bounded):
            low = _as_float_array(leaf.low, where + " (low)", dtype)
            high = _as_float_array(leaf.high, where + " (high)", dtype)
            if leaf.value is None:
                xp = np if _is_concrete(low) and _is_concrete(high) else jnp
                with np.errstate(invalid="ignore"):
                    value = xp.where(
                        xp.isfinite(low) & xp.isfinite(high),
                        (low + high) / 2,
                        xp.where(xp.isfinite(low), low + 1, high - 1),
                    )
                value = xp.where(xp.isinf(low) & xp.isinf(high), 0.0, value).astype(dtype)
            else:
                value = _as_float_array(leaf.value, where, dtype)
            kind = _bounded_kind(low, high, name)
        elif isinstance(leaf, Constraint):
            raise TypeError(f"init{where}: unknown constraint marker {type(leaf).__name__}.")
        else:
            value, kind = _as_float_array(leaf, where, dtype), FREE
        if low is None:
            low = high = np.zeros((), dtype)
        else:
            xp = np if all(map(_is_concrete, (low, high, value))) else jnp
            try:
                low = xp.broadcast_to(low, value.shape)
                high = xp.broadcast_to(high, value.shape)
            except ValueError:
                raise ValueError(
                    f"init{where}: bounds of shape {jnp.shape(low)} / {jnp.shape(high)} do not "
                    f"broadcast to the starting value's shape {value.shape}."
                ) from None
        _check_start(name, where, kind, value, low, high)
        kinds.append(kind)
        shapes.append(tuple(value.shape))
        leaf_names.append(name)
        if kind != FIXED:
            names.extend(element_names(name, tuple(value.shape), free_idx))
        values.append(value)
        lows.append(low)
        highs.append(high)
        masks.append(free_idx)
    masks = tuple(masks) if any(m is not None for m in masks) else ()
    counts = [0 if k == FIXED else math.prod(s) if m is None else len(m)
              for k, s, m in zip(kinds, shapes, masks or [None] * len(kinds))]
    order = _user_order(init, [p for p, _ in flat], counts)
    spec = ParamSpec(treedef, tuple(kinds), tuple(shapes), tuple(leaf_names), tuple(names), order, masks)
    return spec, ParamValues(tuple(values), tuple(lows), tuple(highs))


def _insertion_rank(tree, path) -> tuple:
    """Position of a leaf in the user's order: dict keys by insertion, not sorted."""
    rank, node = [], tree
    for k in path:
        if isinstance(k, jax.tree_util.DictKey) and isinstance(node, dict):
            rank.append(list(node).index(k.key))
            node = node[k.key]
        elif isinstance(k, jax.tree_util.SequenceKey) and isinstance(node, (list, tuple)):
            rank.append(k.idx)
            node = node[k.idx]
        else:
            return tuple(rank)
    return tuple(rank)


def _user_order(init, paths, counts) -> tuple:
    """Indices of the free element names in the user's order (empty if it is JAX's);
    ``counts``: the number of free scalars of each leaf."""
    starts, i = [], 0
    for c in counts:
        starts.append(i)
        i += c
    leaves = sorted(range(len(paths)), key=lambda j: (_insertion_rank(init, paths[j]), j))
    order = tuple(starts[j] + e for j in leaves for e in range(counts[j]))
    return () if order == tuple(range(i)) else order


def _bounded_kind(low, high, name):
    if not (_is_concrete(low) and _is_concrete(high)):
        return TRACED
    lo, hi = np.asarray(low), np.asarray(high)
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError(f"Bounded parameter {name!r}: bounds must not be NaN.")
    if np.any(lo >= hi):
        raise ValueError(
            f"Bounded parameter {name!r}: lower bound {lo} is not below upper bound {hi}; "
            "write mj.Bounded(low, high, value) with low < high."
        )
    lo_f, hi_f = np.isfinite(lo), np.isfinite(hi)
    if np.all(lo_f) and np.all(hi_f):
        return INTERVAL
    if np.all(lo_f) and not np.any(hi_f):
        return LOWER
    if np.all(hi_f) and not np.any(lo_f):
        return UPPER
    if not np.any(lo_f) and not np.any(hi_f):
        return FREE
    raise ValueError(
        f"Bounded parameter {name!r} mixes finite and infinite bounds across its elements; "
        "split it into separate leaves with one kind of bound each."
    )


def _check_start(name, where, kind, value, low, high):
    if not (_is_concrete(value) and _is_concrete(low) and _is_concrete(high)):
        return
    v = np.asarray(value)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"init{where} has a non-finite starting value {v}; start from finite numbers.")
    lo, hi = np.asarray(low), np.asarray(high)
    if kind in (LOWER, INTERVAL) and np.any(v <= lo):
        what = "mj.Positive" if kind == LOWER and np.all(lo == 0) else "its lower bound"
        raise ValueError(
            f"init{where} = {v} is not strictly above {what} ({lo}); start inside the allowed range."
        )
    if kind in (UPPER, INTERVAL) and np.any(v >= hi):
        raise ValueError(
            f"init{where} = {v} is not strictly below its upper bound ({hi}); "
            "start inside the allowed range."
        )
