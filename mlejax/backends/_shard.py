"""Data sharded across devices: JAX's own machinery, no runtime of our own.

One fit (``mj.fit``, ``mj.glm``, ``mj.em``) on a ``jax.Array`` whose observation axis
is sharded (a ``Mesh`` and a ``NamedSharding``) runs as one ``jit``-compiled program:
the log-likelihood is the global sum, its gradient and Hessian are taken of that sum,
and XLA inserts the cross-device reductions (an all-reduce of the k-vector and the
k x k matrix per Newton step). The data never leave their devices.

Many fits (``mj.fit_batch``) sharded over the batch axis are independent, so each
device fits its own block of the batch (``jax.shard_map``): no communication at all,
and each fit's numbers are those of an unsharded run.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

__all__ = ["batch_mesh", "shard_over_batch", "devices_on_axis", "xp_of"]


def xp_of(a):
    """numpy for host arrays, jax.numpy for device arrays: host-side checks and
    summaries of sharded data reduce on its devices, nothing copied to the host."""
    return jnp if isinstance(a, jax.Array) else np


def batch_mesh(tree):
    """``(mesh, axis)`` if a leaf of ``tree`` is a ``jax.Array`` sharded over several
    devices along its leading axis by a ``NamedSharding``; else None."""
    for a in jax.tree_util.tree_leaves(tree):
        sh = getattr(a, "sharding", None)
        if not isinstance(sh, NamedSharding) or len(sh.device_set) < 2 or not len(sh.spec):
            continue
        if sh.spec[0] is not None:
            return sh.mesh, sh.spec[0]
    return None


def devices_on_axis(mesh, axis) -> int:
    """How many devices the mesh axis (or tuple of axes) ``axis`` spans."""
    names = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(mesh.shape[n] for n in names)


def check_divisible(n: int, mesh, axis, what: str) -> int:
    """Fits per device; refuses a batch that does not split evenly, saying how to fix it."""
    d = devices_on_axis(mesh, axis)
    if n % d:
        raise ValueError(
            f"{what} has {n} entries sharded over {d} devices (mesh axis {axis!r}); the sharded "
            f"batch must split evenly: pad it to a multiple of {d} (e.g. repeat the last fit), or "
            "fit the remainder separately."
        )
    return n // d


def shard_over_batch(fn, mesh, axis, n_replicated: int):
    """``fn(xs, *rest)`` run by each device on its own block of the leading axis of
    ``xs`` (and of the outputs); the ``n_replicated`` other arguments are copied to
    every device."""
    blocks, whole = PartitionSpec(axis), PartitionSpec()
    return jax.shard_map(fn, mesh=mesh, in_specs=(blocks,) + (whole,) * n_replicated,
                         out_specs=blocks, check_vma=False)
