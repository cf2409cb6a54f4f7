"""Backends: how many fits (or one fit's data) are spread over memory and devices.

Today: the chunked ``vmap`` behind :func:`mlejax.fit_batch` (also used by the
bootstrap, ``em_batch`` and multi-start fits, ``mj.fit(..., starts=)``). Sharded and streamed data go in this room.
"""

from . import _starts as _starts  # registers the multi-start runner of mj.fit(starts=)
from ._batch import BatchFitResult as BatchFitResult, fit_batch as fit_batch
