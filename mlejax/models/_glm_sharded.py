"""``mj.glm`` on data sharded across devices (``jax.Array`` with a ``NamedSharding``
over the rows): the host steps of the in-memory path (the checks of the data, the
least-squares start) done as reductions on the devices, so the rows never leave them.
The fit itself is ``mj.fit``'s compiled program (see :mod:`mlejax.backends._shard`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import dist
from .._constraints import Positive
from .._fit import spans_devices


def check_design(y, x):
    """``(y, X)`` with X as a matrix, or a ValueError on shapes that do not line up
    (both paths)."""
    if y.ndim != 1:
        raise ValueError(f"y has shape {y.shape}; give a 1-d array of responses.")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has shape {x.shape} but y has {y.shape[0]} observations; X must be (n, p) with "
            "one row per observation (add a column of ones for an intercept)."
        )
    if x.shape[0] < x.shape[1]:
        raise ValueError(
            f"X has {x.shape[0]} rows and {x.shape[1]} columns: more coefficients than "
            "observations, so they are not identified. Drop columns of X (or add a prior with "
            "log_prior= for a penalised fit)."
        )
    return y, x


def refuse_sharded(arrays, what: str):
    if spans_devices(arrays):
        raise ValueError(f"{what} is not available for data sharded across devices; pass host arrays.")


def _device_array(name, a, like=None):
    """``a`` as a float ``jax.Array`` checked finite on its devices; None -> None."""
    if a is None:
        return None
    a = jnp.asarray(a, jnp.result_type(float))  # a sharded jax.Array stays where it is
    if not bool(jnp.all(jnp.isfinite(a))):
        raise ValueError(f"{name} contains {int(jnp.sum(~jnp.isfinite(a)))} NaN/inf values; "
                         "remove or impute those observations.")
    if like is not None and a.shape != like.shape:
        raise ValueError(f"{name} has shape {a.shape}; it needs one value per observation {like.shape}.")
    return a


def sharded_validate(response, owner, y, x, offset, weights):
    """The checks of ``glm._validate`` on the devices: ``(y, X, offset, weights)``;
    zero offsets and unit weights are made with the rows' sharding."""
    y, x = check_design(_device_array("y", y), _device_array("X", x))
    response.check(y, "y", response.response_support, owner=owner)
    offset = _device_array("offset", offset, y)
    w = _device_array("weights", weights, y)
    if w is not None and (not bool(jnp.all(w >= 0)) or not bool(jnp.any(w > 0))):
        raise ValueError("weights must be finite, non-negative and not all zero (frequency weights).")
    zeros = y * 0.0  # elementwise: the sharding of y
    return y, x, zeros if offset is None else offset, zeros + 1.0 if w is None else w


def sharded_start(response, link, y, x, offset, w):
    """``glm._start`` on the devices: the weighted least-squares regression of
    ``link((y + mean y)/2)`` on X through the normal equations (X'WX is one reduction
    over the rows; its solve is k x k), and the moment start of the nuisance."""
    ybar = jnp.sum(w * y) / jnp.sum(w)
    mu0 = y if link.name == "identity" else (y + ybar) / 2
    safe = (mu0 + 0.5) / 2 if isinstance(response, dist.Bernoulli) else mu0 + 0.5
    eta0 = link.fn(mu0)
    eta0 = jnp.where(jnp.isfinite(eta0), eta0, link.fn(safe)) - offset
    xw = x * w[:, None]
    beta = np.asarray(jnp.linalg.lstsq(xw.T @ x, xw.T @ eta0)[0])
    init = {"beta": beta}
    if response.nuisance:
        mu = link.inverse(x @ beta + offset)
        if not isinstance(response, dist.Normal):
            mu = jnp.where(jnp.isfinite(mu) & (mu > 0), mu, ybar)
        init[response.nuisance] = Positive(response.nuisance_start(y, mu, w))
    return init
