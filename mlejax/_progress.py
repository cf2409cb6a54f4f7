"""Progress of long work: EM iterations, ``fit_batch`` and ``bootstrap`` chunks,
profile grids and profile intervals.

``progress=True`` shows a tqdm bar (the optional extra ``progress``), or one plain
line on stderr updated in place without tqdm; ``progress=False`` shows nothing.
The default ``progress=None`` shows a bar only in an interactive session (stderr a
terminal, or a Jupyter kernel) and only once the work has run for ``AUTO_DELAY``
seconds, so quick calls print nothing; elsewhere (scripts, tests, pipes) nothing.
A :class:`Recorder` (or any object with ``start``, ``update`` and ``close``)
receives the updates instead, e.g. the log-likelihood per EM iteration for
:func:`mlejax.plot.trace`.

The compiled loops are untouched when progress is off: the hooks are static
arguments, and only a fit that asks for progress compiles a ``jax.debug.callback``
(every ``every`` iterations, or once per chunk). The callback forwards to the
reporter active on the host (a stack set around the call), so a new reporter does
not recompile.
"""

from __future__ import annotations

import contextlib
import sys
import time

import numpy as np

_ACTIVE: list = []
AUTO_DELAY = 2.0  # seconds before the default (interactive) bar appears
UPDATES = 20  # updates of a bar over a compiled loop (EM iterations)


class Recorder:
    """Collects ``(iteration, loglik)`` at every update (every EM iteration when it
    is the ``progress=`` of ``mj.em``) and chunks done for batches.

    Examples:
        >>> import jax, numpy as np, mlejax as mj
        >>> rec = mj.progress.Recorder()
        >>> x = np.r_[np.zeros(50), np.ones(50) * 5] + np.random.default_rng(0).normal(size=100)
        >>> res = mj.em(mj.GaussianMixture(2), x[:, None], progress=rec, stderr=False)
        >>> len(rec.iterations) == int(res.n_iter)
        True
    """

    every = 1  # wants every iteration

    def __init__(self):
        self.iterations, self.loglik, self.done, self.total = [], [], 0, None

    def start(self, total, desc):
        self.total = total

    def update(self, done, loglik=None):
        if loglik is not None:
            self.iterations.append(int(done))
            self.loglik.append(float(loglik))
        self.done = int(done)

    def close(self):
        pass


class Bar:
    """A tqdm bar, or a plain stderr line without tqdm."""

    every = None  # the caller's default interval

    def __init__(self, file=None, delay: float = 0.0):
        self.file, self._bar, self._desc, self.total, self.done = file or sys.stderr, None, "", None, 0
        self.delay, self._t0, self._shown = float(delay), 0.0, False

    def start(self, total, desc):
        self.total, self._desc, self._t0, self._shown = total, desc, time.monotonic(), False
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, desc=desc, file=self.file, leave=True, delay=self.delay)

    def update(self, done, loglik=None):
        done = int(done)
        if self._bar is not None:
            self._bar.update(max(0, done - self._bar.n))
            if loglik is not None:
                self._bar.set_postfix(loglik=f"{float(loglik):.8g}", refresh=False)
        else:
            tail = "" if loglik is None else f"  loglik {float(loglik):.8g}"
            done = max(done, self.done)
            if self._shown or time.monotonic() - self._t0 >= self.delay:
                self._shown = True
                print(f"\r{self._desc}: {done}/{self.total}{tail}", end="", file=self.file, flush=True)
        self.done = done

    def close(self):
        if self._bar is not None:
            self._bar.close()
        elif self._shown:
            print(file=self.file, flush=True)


def interactive() -> bool:
    """Is this an interactive session: stderr a terminal, or a Jupyter kernel?"""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or replaced stream
        pass
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


def reporter(progress):
    """The reporter for a ``progress=`` argument, or None for no progress. ``None``
    (the default) is a bar shown after ``AUTO_DELAY`` seconds in an interactive
    session (:func:`interactive`), else no progress."""
    if progress is None:
        return Bar(delay=AUTO_DELAY) if interactive() else None
    if progress is False:
        return None
    if progress is True:
        return Bar()
    if all(hasattr(progress, m) for m in ("start", "update", "close")):
        return progress
    raise TypeError(f"progress={progress!r}: use True, False, or an object with start/update/close "
                    "(e.g. mj.progress.Recorder()).")


def interval(rep, total) -> int:
    """Iterations between updates: the reporter's own ``every``, or ~20 updates (each a host callback that
    holds up the compiled loop briefly; a bar needs no more)."""
    every = getattr(rep, "every", None)
    return int(every) if every else max(1, int(total) // UPDATES)


@contextlib.contextmanager
def reporting(rep, total, desc):
    """Make ``rep`` the target of the compiled callbacks while the block runs."""
    if rep is None:
        yield None
        return
    import jax

    rep.start(total, desc)
    _ACTIVE.append(rep)
    try:
        yield rep
        jax.effects_barrier()  # every callback of the block has run
    finally:
        _ACTIVE.pop()
        rep.close()


def _emit(done, loglik=None):
    if _ACTIVE:
        done = np.max(np.asarray(done))
        ll = None if loglik is None else np.max(np.asarray(loglik))  # restarts: the best so far
        _ACTIVE[-1].update(done, ll)


def emit_host(done):
    """An update from host code (between calls)."""
    _emit(done)


def host_chunks(fn, items, size: int, rep, desc: str):
    """``fn(items)`` for a 1-d array ``items``, computed ``size`` items per call with
    ``rep`` told the items done after each call; one call of all of them when ``rep``
    is None. The last call is padded with its last item, so every call has the same
    shape (one compilation). ``fn`` returns a pytree of arrays with a leading item
    axis; the chunks' outputs are concatenated on the host."""
    import jax

    n = len(items)
    if rep is None or n <= size:
        with reporting(rep, n, desc):
            out = fn(items)
            if rep is not None:
                emit_host(n)
        return out
    parts = []
    with reporting(rep, n, desc):
        for start in range(0, n, size):
            part = items[start:start + size]
            pad = np.concatenate([part, np.repeat(part[-1:], size - len(part), axis=0)])
            parts.append(jax.tree_util.tree_map(lambda a, k=len(part): np.asarray(a)[:k], fn(pad)))
            emit_host(start + len(part))
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)


def iteration_hook(n, loglik, every: int, stepped=True):
    """Inside a compiled loop: report ``(n, loglik)`` when an iteration was taken
    (``stepped``) and ``n`` is a multiple of ``every`` (``every`` is static; 0 means
    no hook is compiled at all)."""
    import jax
    from jax import lax

    if not every:
        return
    lax.cond(stepped & (n % every == 0), lambda: jax.debug.callback(_emit, n, loglik), lambda: None)


def chunk_hook(done):
    """Inside the compiled chunk loop: ``done`` items finished."""
    import jax

    jax.debug.callback(_emit, done)


__all__ = ["Recorder", "Bar"]
