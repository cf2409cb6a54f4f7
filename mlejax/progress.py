"""Progress reporters for long work (``progress=`` of ``mj.em``, ``mj.fit_batch``,
``mj.bootstrap``, ``FitResult.profile`` and ``FitResult.conf_int(method="profile")``):
``True`` for a bar (tqdm, the optional extra ``progress``; a plain stderr line
without it), ``False`` for none, or an object with ``start(total, desc)``,
``update(done, loglik)`` and ``close()`` such as :class:`Recorder`. The default,
``None``, shows a bar only in an interactive session (a terminal or a notebook) and
only once the work has run for 2 s."""

from ._progress import Bar as Bar, Recorder as Recorder

__all__ = ["Bar", "Recorder"]
