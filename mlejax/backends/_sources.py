"""Streamed data sources: the rows of a fit read chunk by chunk, never all in memory.

A source yields the data as chunks of exactly ``chunk_size`` rows (a pytree of numpy
arrays, every leaf one row per observation), the last one padded with copies of its
first row and reported with the number of its real rows, so that one compiled
per-chunk function serves every chunk. The next chunk is read (and copied to the
device) by a background thread while the current one computes (:func:`prefetched`).

Sources: :func:`from_arrays` (numpy arrays or ``np.memmap``), :func:`from_npy`
(``.npy`` files, memory-mapped), :func:`from_parquet` (Parquet files, the optional
extra ``parquet``: pyarrow) and :func:`from_iterator` (any function returning a fresh
iterator of chunks).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

DEFAULT_CHUNK_ROWS = 65_536


def _check_chunk_size(chunk_size) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer (rows per chunk).")
    return int(chunk_size)


def _rows(tree) -> int:
    """The shared leading-axis length of a chunk's leaves (refused otherwise)."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError("a streamed chunk has no data leaves.")
    sizes = {a.shape[0] if len(a.shape) else None for a in leaves}
    if len(sizes) != 1 or None in sizes:
        shapes = [a.shape for a in leaves]
        raise ValueError(
            f"streamed data leaves must all have one row per observation (a shared leading axis); "
            f"got shapes {shapes}. Put constants in a closure of loglik instead."
        )
    return sizes.pop()


def pad_rows(chunk, n_valid: int, size: int):
    """``chunk`` (``n_valid`` rows) padded to ``size`` rows with copies of its first row
    (real values, so every function of them stays finite; they get weight 0)."""
    if n_valid == size:
        return chunk
    idx = np.concatenate([np.arange(n_valid), np.zeros(size - n_valid, np.int64)])
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], chunk)


class Source:
    """A streamed dataset: re-iterable chunks of ``chunk_size`` rows.

    Pass it as ``data`` to :func:`mlejax.fit`, as ``y`` to :func:`mlejax.glm`, or to
    :func:`mlejax.em` with a :class:`~mlejax.GaussianMixture`. Subclasses implement
    :meth:`_raw_chunks` (chunks of any number of rows, in order); this class re-cuts them
    to exactly ``chunk_size`` rows.
    """

    chunk_size: int
    streamed = True  # how mj.fit recognises a source

    def _raw_chunks(self, order=None) -> Iterator[Any]:
        raise NotImplementedError

    @property
    def n_chunks(self) -> int | None:
        """The number of chunks when known in advance (random access), else None."""
        return None

    def chunks(self, order=None) -> Iterator[tuple[Any, int]]:
        """``(chunk, n_valid)`` pairs: chunks of exactly ``chunk_size`` rows of numpy
        arrays, the last padded (its real rows first). ``order`` (sources with random
        access only) visits the chunks in that order."""
        size = self.chunk_size
        buf, have = [], 0
        for raw in self._raw_chunks(order):
            n = _rows(raw)
            buf.append(raw)
            have += n
            while have >= size:
                joined = _concat(buf)
                yield jax.tree_util.tree_map(lambda a: a[:size], joined), size
                rest = jax.tree_util.tree_map(lambda a: a[size:], joined)
                have -= size
                buf = [rest] if have else []
        if have:
            yield pad_rows(_concat(buf), have, size), have


def _concat(parts):
    if len(parts) == 1:
        return jax.tree_util.tree_map(np.asarray, parts[0])
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a, 0), *parts)


class ArraySource(Source):
    """Chunks sliced from arrays of one row per observation (numpy or ``np.memmap``:
    only the chunk being read is in memory)."""

    def __init__(self, data, chunk_size: int):
        self.data = data
        self.nobs = _rows(data)
        self.chunk_size = min(_check_chunk_size(chunk_size), self.nobs)

    @property
    def n_chunks(self) -> int:
        return -(-self.nobs // self.chunk_size)

    def _raw_chunks(self, order=None):
        size = self.chunk_size
        for i in range(self.n_chunks) if order is None else order:
            lo, hi = int(i) * size, min((int(i) + 1) * size, self.nobs)
            # a contiguous in-memory copy: the read from disk happens here (in the prefetch thread)
            yield jax.tree_util.tree_map(lambda a, lo=lo, hi=hi: self._slice(a, lo, hi), self.data)

    @staticmethod
    def _slice(a, lo, hi):
        return np.ascontiguousarray(a[lo:hi])

    def chunks(self, order=None):
        for raw in self._raw_chunks(order):  # chunks are already chunk_size rows but the last
            n = _rows(raw)
            yield pad_rows(raw, n, self.chunk_size), n


class NpyFile:
    """A C-ordered ``.npy`` file read by rows with plain reads: unlike ``np.memmap``, the
    rows read are not kept mapped into the process (its resident memory stays at the
    chunks in flight)."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran and len(shape) > 1:
            raise ValueError(f"{path}: a Fortran-ordered .npy file cannot be read by rows; save it C-ordered.")
        self.shape, self.dtype = shape, dtype
        self.row = int(np.prod(shape[1:], dtype=np.int64))

    def __getitem__(self, rows: slice):
        lo, hi, _ = rows.indices(self.shape[0])
        with open(self.path, "rb") as f:
            f.seek(self.offset + lo * self.row * self.dtype.itemsize)
            out = np.fromfile(f, self.dtype, count=(hi - lo) * self.row)
        return out.reshape((hi - lo,) + tuple(self.shape[1:]))


class IteratorSource(Source):
    """Chunks from ``factory()``, a function returning a fresh iterator of data pytrees
    (called once per pass)."""

    def __init__(self, factory: Callable[[], Iterator[Any]], chunk_size: int | None = None):
        if not callable(factory):
            raise TypeError(
                f"from_iterator needs a function returning a fresh iterator of chunks (called once per "
                f"pass over the data); got {type(factory).__name__}. Wrap a generator: lambda: gen(...)."
            )
        self.factory = factory
        self.nobs = None
        if chunk_size is None:
            first = next(iter(factory()), None)
            if first is None:
                raise ValueError("from_iterator: the iterator yields no chunks.")
            chunk_size = _rows(first)
        self.chunk_size = _check_chunk_size(chunk_size)

    def _raw_chunks(self, order=None):
        if order is not None:
            raise ValueError("an iterator source has no random access; it is read in its own order.")
        return iter(self.factory())


class ParquetSource(Source):
    """Chunks of columns of Parquet files, read in record batches by pyarrow."""

    def __init__(self, paths, columns, chunk_size: int):
        try:
            import pyarrow.parquet as pq
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "from_parquet needs pyarrow (the optional extra 'parquet': pip install 'mlejax[parquet]')."
            ) from e
        self._pq = pq
        self.paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
        if not isinstance(columns, dict) or not columns:
            raise TypeError(
                "from_parquet: columns= must be a dict naming the data leaves, e.g. "
                "{'y': 'y', 'X': ['x1', 'x2']} (a list of columns is stacked into an (n, p) array)."
            )
        self.columns = columns
        self.chunk_size = _check_chunk_size(chunk_size)
        self.nobs = sum(pq.ParquetFile(p).metadata.num_rows for p in self.paths)

    def _raw_chunks(self, order=None):
        if order is not None:
            raise ValueError("a Parquet source is read in file order.")
        names = sorted({c for v in self.columns.values() for c in ([v] if isinstance(v, str) else v)})
        for path in self.paths:
            for batch in self._pq.ParquetFile(path).iter_batches(batch_size=self.chunk_size, columns=names):
                cols = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in names}
                yield {k: cols[v] if isinstance(v, str) else np.column_stack([cols[c] for c in v])
                       for k, v in self.columns.items()}


def from_arrays(data, chunk_size: int = DEFAULT_CHUNK_ROWS) -> ArraySource:
    """A streamed source over arrays with one row per observation (numpy arrays,
    ``np.memmap`` or ``np.load(..., mmap_mode="r")``): any pytree of them.

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> src = mj.stream.from_arrays({"x": np.arange(10.0)}, chunk_size=4)
        >>> [n for _, n in src.chunks()]
        [4, 4, 2]
    """
    return ArraySource(data, chunk_size)


def from_npy(paths, chunk_size: int = DEFAULT_CHUNK_ROWS) -> ArraySource:
    """A streamed source over ``.npy`` files (a pytree of paths, e.g. ``{"y": "y.npy",
    "X": "X.npy"}``), read by rows: only the chunks in flight are in memory.

    Examples:
        >>> import os, tempfile, numpy as np, mlejax as mj
        >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> np.save(path, np.arange(5.0))
        >>> [n for _, n in mj.stream.from_npy(path, chunk_size=2).chunks()]
        [2, 2, 1]
    """
    arrays = jax.tree_util.tree_map(NpyFile, paths)
    return ArraySource(arrays, chunk_size)


def from_parquet(paths, columns: dict, chunk_size: int = DEFAULT_CHUNK_ROWS) -> ParquetSource:
    """A streamed source over Parquet files (one path or a list), read in record batches.
    ``columns`` names the data leaves: ``{"y": "y", "X": ["x1", "x2"]}`` (a list of
    columns becomes an ``(n, p)`` array). Needs the optional extra ``parquet`` (pyarrow).

    Examples:
        >>> import os, tempfile, numpy as np, pyarrow as pa, pyarrow.parquet as pq, mlejax as mj
        >>> path = os.path.join(tempfile.mkdtemp(), "d.parquet")
        >>> pq.write_table(pa.table({"y": [0.0, 1, 1], "a": [1.0, 2, 3], "b": [4.0, 5, 6]}), path)
        >>> chunk, n = next(mj.stream.from_parquet(path, {"y": "y", "X": ["a", "b"]}, chunk_size=3).chunks())
        >>> chunk["X"].shape, n
        ((3, 2), 3)
    """
    return ParquetSource(paths, columns, chunk_size)


def from_iterator(factory: Callable[[], Iterator[Any]], chunk_size: int | None = None) -> IteratorSource:
    """A streamed source from ``factory()``, which returns a fresh iterator of chunks
    (pytrees of arrays with one row per observation) each time it is called: once per
    pass over the data. Chunks are re-cut to ``chunk_size`` rows (default: the first
    chunk's).

    Examples:
        >>> import numpy as np, mlejax as mj
        >>> src = mj.stream.from_iterator(lambda: (np.full(3, i) for i in range(3)), chunk_size=2)
        >>> [n for _, n in src.chunks()]
        [2, 2, 2, 2, 1]
    """
    return IteratorSource(factory, chunk_size)


class Mapped(Source):
    """``source`` with ``fn`` applied to each chunk's real rows (a host function, run in
    the prefetch thread): e.g. a model turning named columns into its data tuple, and
    checking them."""

    def __init__(self, source, fn):
        self.source, self.fn = source, fn
        self.chunk_size, self.nobs = source.chunk_size, getattr(source, "nobs", None)

    @property
    def n_chunks(self):
        return self.source.n_chunks

    def chunks(self, order=None):
        for chunk, n in self.source.chunks(order):
            real = self.fn(jax.tree_util.tree_map(lambda a, n=n: np.asarray(a)[:n], chunk))
            yield pad_rows(real, n, self.chunk_size), n


def is_source(data) -> bool:
    return isinstance(data, Source)


class Whole(Source):
    """Data already in memory (or on the device) as one chunk of all its rows."""

    def __init__(self, data):
        self.data, self.nobs = data, _rows(data)
        self.chunk_size = self.nobs

    def chunks(self, order=None):
        yield self.data, self.nobs


# -- prefetching: read the next chunk while the current one computes -----------------------

_DONE = object()


def prefetched(chunks: Iterator[tuple[Any, int]], depth: int = 2) -> Iterator[tuple[Any, int]]:
    """``chunks`` read ahead by a background thread (at most ``depth`` waiting), each
    already copied to the device. An error in the reader is raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader():
        try:
            for chunk, n in chunks:
                if not put((jax.device_put(chunk), n)):
                    return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001 - forwarded to the consumer
            put(e)

    thread = threading.Thread(target=reader, daemon=True, name="mlejax-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


__all__ = ["Source", "from_arrays", "from_npy", "from_parquet", "from_iterator"]
