"""Recent notifications per user, in memory: the last 50 per user, for at most 10,000 users.

In memory on purpose (one process, one replica): notification is the lab's stateless-looking service whose state a
learner can watch disappear on restart. The gunicorn settings run it as one worker with threads.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Any

PER_USER = 50
MAX_USERS = 10_000


class Inbox:
    def __init__(self) -> None:
        self._by_user: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, notification: dict[str, Any]) -> None:
        user = notification["user_id"]
        with self._lock:
            box = self._by_user.pop(user, None) or deque(maxlen=PER_USER)
            box.appendleft(notification)
            self._by_user[user] = box  # most recently used last
            while len(self._by_user) > MAX_USERS:
                self._by_user.popitem(last=False)

    def recent(self, user: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._by_user.get(user, ()))[:limit]
