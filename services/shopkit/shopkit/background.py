"""Work that must not hold up an answer (notifications): a few threads per process and a bounded queue.

A caller's answer never waits for it, and a slow neighbour cannot pile up work without bound: when the queue is
full the task is dropped, logged and counted (upstream_requests_total{outcome="dropped"} for calls). Each gunicorn
worker makes its own pool on first use: threads do not survive a fork.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from .logs import get_logger

WORKERS = 2
QUEUE_SIZE = 200


class Background:
    def __init__(self, name: str, workers: int = WORKERS, queue_size: int = QUEUE_SIZE):
        self.name = name
        self.workers = workers
        self.queue_size = queue_size
        self._pid = 0
        self._queue: queue.Queue[Callable[[], None]] | None = None
        self._lock = threading.Lock()

    def _tasks(self) -> queue.Queue[Callable[[], None]]:
        if self._queue is None or self._pid != os.getpid():
            with self._lock:
                if self._queue is None or self._pid != os.getpid():
                    self._queue = queue.Queue(self.queue_size)
                    self._pid = os.getpid()
                    for n in range(self.workers):
                        threading.Thread(target=self._run, args=(self._queue,), name=f"{self.name}-{n}",
                                         daemon=True).start()
        return self._queue

    def submit(self, task: Callable[[], None]) -> bool:
        """Runs `task` soon in a thread of this process; False (task dropped) when the queue is full."""
        try:
            self._tasks().put_nowait(task)
            return True
        except queue.Full:
            get_logger().warning("background queue full: task dropped", extra={"queue": self.name})
            return False

    @staticmethod
    def _run(tasks: queue.Queue[Callable[[], None]]) -> None:
        while True:
            task = tasks.get()
            try:
                task()
            except Exception:  # a background task has nobody to answer to: log it and carry on
                get_logger().exception("background task failed")
            finally:
                tasks.task_done()
