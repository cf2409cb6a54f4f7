"""Backends: how many fits (or one fit's data) are spread over memory and devices.

Today: the chunked ``vmap`` behind :func:`mlejax.fit_batch` (also used by the
bootstrap and ``em_batch``); streamed (out-of-core) data, ``_sources`` and ``_stream``
(exact Newton, one pass over the chunks per iteration); minibatch fits,
``_minibatch``. Sharded data go in this room too.
"""

from ._batch import BatchFitResult as BatchFitResult, fit_batch as fit_batch
from ._minibatch import fit_out_of_core as fit_out_of_core  # registers streamed/minibatch fits with mj.fit
