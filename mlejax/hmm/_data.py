"""Sequences in: one array, a list of arrays of any lengths, or a padded array with
``lengths`` -> one padded array ``(N, T, ...)``, its mask and the observed mask."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._constraints import default_float_dtype

MISSING = ("error", "marginalize")


class Sequences(NamedTuple):
    x: Any  # (N, T, ...) padded observations (padding and missing values replaced by a valid one)
    mask: Any  # (N, T) bool: a real time step
    observed: Any  # (N, T) bool: a real, non-missing observation
    lengths: Any  # (N,) numpy ints
    kind: str  # "list", "single" or "padded": how results are returned


def _numeric(a, what):
    arr = np.asarray(a) if not isinstance(a, jax.Array) else np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{what} has dtype {arr.dtype}; an HMM needs numeric observations.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{what} is complex; an HMM takes real observations.")
    return arr.astype(np.float64)


def _event(arr, event_ndim, lead):
    """Add the feature axis of vector emissions given as scalars per step."""
    if event_ndim == 1 and arr.ndim == lead:
        arr = arr[..., None]
    if arr.ndim != lead + event_ndim:
        want = "(T,)" if event_ndim == 0 else "(T, n_features)"
        raise ValueError(f"a sequence has shape {arr.shape[lead - 1:]}; these emissions need {want} per sequence.")
    return arr


def as_sequences(data, lengths, event_ndim, missing="error") -> Sequences:
    """Validate and pad the data (host side). Errors name the argument and the fix."""
    if missing not in MISSING:
        raise ValueError(f"missing={missing!r} is not known; use one of {MISSING}.")
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"data must be a numeric array or a list of arrays; got {type(data).__name__}.")
    if isinstance(data, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths= goes with one padded array; a list of sequences carries its own lengths.")
        if len(data) == 0:
            raise ValueError("data is an empty list; give at least one sequence.")
        seqs = [_event(_numeric(s, f"data[{i}]"), event_ndim, 1) for i, s in enumerate(data)]
        shapes = {s.shape[1:] for s in seqs}
        if len(shapes) > 1:
            raise ValueError(f"the sequences have different observation shapes {sorted(shapes)}; they must agree.")
        lens = np.array([s.shape[0] for s in seqs])
        t = int(lens.max())
        x = np.zeros((len(seqs), t) + seqs[0].shape[1:])
        for i, s in enumerate(seqs):
            x[i, : len(s)] = s
        kind = "list"
    elif lengths is None:
        x = _event(_numeric(data, "data"), event_ndim, 1)[None]
        lens = np.array([x.shape[1]])
        kind = "single"
    else:
        x = _event(_numeric(data, "data"), event_ndim, 2)
        lens = np.asarray(lengths)
        if lens.ndim != 1 or lens.shape[0] != x.shape[0] or not np.all(lens == np.round(lens)):
            raise ValueError(
                f"lengths has shape {lens.shape}; with a padded array of shape {x.shape} it needs one integer "
                f"length per sequence, shape ({x.shape[0]},). For hmmlearn's concatenated layout use a list: "
                "np.split(X, np.cumsum(lengths)[:-1])."
            )
        lens = lens.astype(int)
        if np.any(lens > x.shape[1]) or np.any(lens < 0):
            raise ValueError(f"lengths must lie between 0 and the padded length {x.shape[1]}; got {lens.tolist()}.")
        kind = "padded"
    if np.any(lens < 2):
        bad = int(np.argmin(lens))
        raise ValueError(
            f"sequence {bad} has length {int(lens[bad])}; every sequence needs at least 2 time steps (a "
            "transition). Drop the short sequences or join them."
        )
    mask = np.arange(x.shape[1])[None, :] < lens[:, None]
    flat_axes = tuple(range(2, x.ndim))
    finite = np.all(np.isfinite(x), axis=flat_axes) if flat_axes else np.isfinite(x)
    nan = np.any(np.isnan(x), axis=flat_axes) if flat_axes else np.isnan(x)
    if np.any(mask & ~finite & ~nan):
        raise ValueError("data contain inf; remove those observations or mark them as missing with NaN.")
    if np.any(mask & nan) and missing == "error":
        raise ValueError(
            f"data contain NaN ({int(np.sum(mask & nan))} time steps); pass missing='marginalize' to integrate "
            "the missing observations out of the likelihood (the state sequence carries on through them), "
            "or impute them."
        )
    observed = mask & finite
    if not np.any(observed):
        raise ValueError("no observed values: every time step is missing.")
    fill = x[observed][0]
    x = np.where((~observed).reshape(observed.shape + (1,) * len(flat_axes)), fill, x)
    return Sequences(x, mask, observed, lens, kind)


def to_device(seq: Sequences):
    dtype = default_float_dtype()
    return jnp.asarray(seq.x, dtype), jnp.asarray(seq.mask), jnp.asarray(seq.observed)


def unpad(values, seq: Sequences):
    """Per-step results (N, T, ...) back in the layout of the input."""
    v = np.asarray(values)
    if seq.kind == "single":
        return v[0]
    if seq.kind == "list":
        return [v[i, :n] for i, n in enumerate(seq.lengths)]
    return v
