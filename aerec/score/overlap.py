"""Run a producer, or a consumer, in a background thread, so reading the next chunk and
writing the last one overlap scoring.

ONNX Runtime, Polars and NumPy release the GIL in their heavy loops, so the reader's
parsing, the scorer's matrix products and the writer's encoding proceed at once.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import polars as pl

from aerec.io.sinks import RowWriter, Written

T = TypeVar("T")
_DONE = object()


class Background(Generic[T]):
    """What `items` yields, produced up to `depth` ahead in a worker thread that starts
    reading at once (so the reading overlaps what the consumer does before its first
    item, such as opening the model). An exception in the producer is raised here, at the
    point it would have been; `close()` (also when the consumer stops early, or never
    began) tells the worker to stop and joins it."""

    def __init__(self, items: Iterable[T], depth: int = 2) -> None:
        self._items = items
        self._ready: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._worker = threading.Thread(target=self._produce, name="aerec-reader", daemon=True)
        self._worker.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                while not self._stop.is_set():
                    try:
                        self._ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._ready.put(_DONE)
        except BaseException as error:  # handed to the consumer
            self._ready.put(error)
        finally:  # a generator's own clean-up (temporary files) runs now, not at exit
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._ready.get()
        if item is _DONE or isinstance(item, BaseException):
            self._finished = True
            self.close()
            if isinstance(item, BaseException):
                raise item
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        while self._worker.is_alive():
            try:
                self._ready.get_nowait()
            except queue.Empty:
                self._worker.join(timeout=0.1)


def in_background(items: Iterable[T], depth: int = 2) -> Background[T]:
    """`items`, read ahead in a worker thread from now on (Background)."""
    return Background(items, depth)


class WriteBehind:
    """A RowWriter whose writes run in one worker thread, in order, at most `depth` frames
    behind the caller: the Parquet encoding and the health tally overlap the scoring of
    the next chunk. A write that failed raises in the caller at its next write or at
    close; `stop` drops what was not written yet and waits for the write under way."""

    def __init__(self, writer: RowWriter, depth: int = 2) -> None:
        self._writer, self._depth = writer, depth
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aerec-writer")
        self._pending: deque[Future[None]] = deque()

    def write(self, rows: pl.DataFrame) -> None:
        while self._pending and (len(self._pending) >= self._depth or self._pending[0].done()):
            self._pending.popleft().result()
        self._pending.append(self._worker.submit(self._writer.write, rows))

    def close(self) -> Written:
        while self._pending:
            self._pending.popleft().result()
        self._worker.shutdown()
        return self._writer.close()

    def stop(self) -> None:
        self._pending.clear()
        self._worker.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def write_behind(writer: RowWriter, depth: int = 2) -> Iterator[WriteBehind]:
    """`writer` behind a worker thread (WriteBehind), stopped however the block ends: an
    error reaches the caller only once nothing writes any more."""
    behind = WriteBehind(writer, depth)
    try:
        yield behind
    finally:
        behind.stop()
