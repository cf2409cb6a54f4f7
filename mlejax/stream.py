"""Streamed (out-of-core) data for ``mj.fit``, ``mj.glm`` and ``mj.em``: sources that
read the rows chunk by chunk. Each Newton iteration is one exact pass over the chunks
(the next one read while the current one computes); with ``batch_size=`` and an optax
method, epochs of shuffled minibatches. See the streaming guide in the docs."""

from .backends._sources import (
    Source as Source,
    from_arrays as from_arrays,
    from_iterator as from_iterator,
    from_npy as from_npy,
    from_parquet as from_parquet,
)

__all__ = ["Source", "from_arrays", "from_iterator", "from_npy", "from_parquet"]
