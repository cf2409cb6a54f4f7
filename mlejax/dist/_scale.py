"""Fitting location-scale and scale families on data of any magnitude.

The derivatives of a log-likelihood hold powers of the data's scale (``1/sigma^2``,
``1/sigma^4`` ...), which overflow or underflow in floating point long before the
data do: Normal data of magnitude 1e150 give a Hessian entry of 1e-300 and a
third derivative that is zero, so the fit reports precision loss and wrong standard
errors although the closed form is exact. For a family whose parameters scale with
the data (``Family.scaling``: the power of the data's unit in each parameter:
1 for a location or scale, -1 for a rate, 2 for a variance, 0 for a shape), the
fit is instead made on ``x / s`` with ``s`` a power of two near the data's
magnitude, which is exact in binary floating point, and mapped back: estimates and
standard errors times ``s ** power``, covariance ``D C D`` and information
``D^-1 I D^-1`` with ``D = diag(s ** power)`` (the Jacobian of the map), the
log-likelihood minus ``sum(w) * log(s)`` (a density in ``x`` is the density in
``x / s`` over ``s``). The scale is chosen on the host from the data; ordinary
data (magnitude within ``[1/hi, hi]``, ``hi`` the eighth root of the dtype's
largest number: 1e38 in float64) are fitted as they are.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._jit import cached

__all__ = ["data_scale", "rescaled_loglik", "unscale_result"]


def data_scale(family, x: np.ndarray, dtype) -> int | None:
    """The exponent ``e`` of the power of two ``s = 2**e`` to divide ``x`` by, or
    None when ``x`` is of ordinary magnitude, ``family`` does not scale, or the
    mapped-back covariance would not be representable (a variance of a parameter of
    power ``p`` grows like ``s ** (2 p)``: Normal data beyond ~1e151)."""
    if not getattr(family, "scaling", None):
        return None
    big = float(np.max(np.abs(np.asarray(x, np.float64))))
    top = float(np.finfo(dtype).max)
    hi = top**0.125
    if big == 0 or 1.0 / hi <= big <= hi:
        return None
    limit = top ** (0.5 / max(abs(p) for p in family.scaling.values())) / 256.0
    if not 1.0 / limit < big < limit:
        return None
    return int(np.frexp(big)[1])  # big = m * 2**e, 0.5 <= m < 1: |x / 2**e| < 1


def scale_data(x: np.ndarray, e: int) -> np.ndarray:
    """``x / 2**e``, exactly (a power of two changes only the exponent)."""
    return np.ldexp(np.asarray(x), -e)


def _factors(family, params, e: int):
    """``s ** power`` per parameter, shaped like ``params`` (host floats)."""
    return {k: np.broadcast_to(np.ldexp(1.0, e * family.scaling[k]), np.shape(v)) for k, v in params.items()}


@cached
def rescaled_loglik(base, family, e: int):
    """The log-likelihood of the original data in the original units, evaluated on
    the rescaled data ``(x / s, w)`` that the result keeps: for the result's profile
    and covariance methods."""
    log_s = e * math.log(2.0)

    def loglik(params, data):
        x, w = data
        down = {k: v * 2.0 ** (-e * family.scaling[k]) for k, v in params.items()}
        return base(down, (x, w)) - jnp.sum(w) * math.prod(x.shape[1:]) * log_s

    return loglik


def unscale_result(res, family, base, e: int, n_values: float):
    """A fit of ``x / 2**e`` mapped back to the units of ``x`` (module docstring);
    ``n_values``: the weighted number of scalar values (observations times their size)."""
    f_tree = _factors(family, res.params, e)
    d = np.asarray(res._spec.natural_flat(f_tree, np), float)
    mul = lambda a, f: None if a is None else a * jnp.asarray(f, jnp.result_type(a))  # noqa: E731
    params = jax.tree_util.tree_map(mul, res.params, f_tree)
    stderr = None if res.stderr is None else jax.tree_util.tree_map(mul, res.stderr, f_tree)
    outer = np.outer(d, d)
    cov = mul(res.cov, outer)
    info = mul(res.information, 1.0 / outer)
    null = res.null_vector
    if null is not None:
        v = np.asarray(null) / d
        null = jnp.asarray(v / np.linalg.norm(v), jnp.result_type(res.null_vector))
    # The result keeps the rescaled problem's unconstrained coordinates ``x`` and reads
    # them in the data's units through the spec's power-of-two units: profiles, refits
    # and bootstraps then iterate on numbers of order one, not on 1e150.
    spec = res._spec
    units = tuple(e * family.scaling[name] for name in spec.leaf_names)
    dyn = res._dyn._replace(values=tuple(v * jnp.asarray(np.ldexp(1.0, u), jnp.result_type(v))
                                         for v, u in zip(res._dyn.values, units)))
    return dataclasses.replace(
        res, params=params, stderr=stderr, cov=cov, information=info, null_vector=null, _dyn=dyn,
        _spec=dataclasses.replace(spec, units=units), loglik=res.loglik - n_values * e * math.log(2.0),
        _loglik=rescaled_loglik(base, family, e),
    )
