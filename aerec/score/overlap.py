"""Run a producer in a background thread, so reading the next batch overlaps scoring.

ONNX Runtime, Polars and NumPy release the GIL in their heavy loops, so the reader's
parsing and the scorer's matrix products proceed at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def in_background(items: Iterable[T], depth: int = 2) -> Generator[T, None, None]:
    """Yield what `items` yields, produced up to `depth` ahead in a worker thread.

    An exception in the producer is raised here, at the point it would have been; if the
    consumer stops early the worker is told to stop and joined.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as error:  # handed to the consumer
            ready.put(error)
        finally:  # a generator's own clean-up (temporary files) runs now, not at exit
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="aerec-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)
