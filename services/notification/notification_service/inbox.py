"""Recent notifications per user: the last 50 per user, for at most 10,000 users, in SQLite.

The database file lives in the instance's runtime folder (SHOPKIT_RUNTIME_DIR: an emptyDir in the cluster), so every
gunicorn worker of the instance reads and writes the same inbox, and it survives a worker's restart. It goes with the
pod (and with the container: each start makes a new runtime folder), which is what a learner watching notification
restart should see; nothing else depends on it. SQLite in WAL mode lets readers run beside the one writer; each thread
opens its own connection (a connection must not cross threads, nor a fork).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

PER_USER = 50
MAX_USERS = 10_000
TRIM_EVERY = 200  # inserts between two trims of the least recently notified users
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, seq);
"""


class Inbox:
    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "notifications.sqlite3")
        self._local = threading.local()
        self._inserts = 0
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def add(self, notification: dict[str, Any]) -> None:
        user = notification["user_id"]
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO notifications (user_id, body) VALUES (?, ?)", (user, json.dumps(notification)))
            db.execute("DELETE FROM notifications WHERE user_id = ? AND seq NOT IN "
                       "(SELECT seq FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT ?)",
                       (user, user, PER_USER))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._inserts += 1
        if self._inserts % TRIM_EVERY == 0:
            self._trim_users(db)

    def _trim_users(self, db: sqlite3.Connection) -> None:
        """Forgets the users whose newest notification is older than that of the MAX_USERS most recent ones."""
        db.execute("DELETE FROM notifications WHERE user_id NOT IN (SELECT user_id FROM notifications "
                   "GROUP BY user_id ORDER BY MAX(seq) DESC LIMIT ?)", (MAX_USERS,))

    def recent(self, user: str, limit: int) -> list[dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT body FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT ?", (user, limit)).fetchall()
        return [json.loads(body) for (body,) in rows]
