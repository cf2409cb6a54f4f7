"""Progress reporters for long work (``progress=`` of ``mj.em`` and ``mj.fit_batch``):
``True`` for a bar (tqdm, the optional extra ``progress``; a plain stderr line
without it), or an object with ``start(total, desc)``, ``update(done, loglik)`` and
``close()`` such as :class:`Recorder`."""

from ._progress import Bar as Bar, Recorder as Recorder

__all__ = ["Bar", "Recorder"]
