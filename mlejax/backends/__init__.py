"""Backends: how many fits (or one fit's data) are spread over memory and devices.

Today: the chunked ``vmap`` behind :func:`mlejax.fit_batch` (also used by the
bootstrap, ``em_batch`` and multi-start fits, ``mj.fit(..., starts=)``); streamed
(out-of-core) data, ``_sources`` and ``_stream`` (exact Newton, one pass over the
chunks per iteration); minibatch fits, ``_minibatch``. Sharded data go in this room too.
"""

from . import _starts as _starts  # registers the multi-start runner of mj.fit(starts=)
from ._batch import BatchFitResult as BatchFitResult, fit_batch as fit_batch
from ._minibatch import fit_out_of_core as fit_out_of_core  # registers streamed/minibatch fits with mj.fit
