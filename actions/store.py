"""The executor's durable memory of commands, so each runs at most once across restarts.

One sqlite row per ``action_id``: written ``started`` (committed to disk) *before* the
handler runs, ``done`` with the result after it, and ``reported`` once the result is on the
results topic. A row still ``started`` after a crash means the handler may have run: it is
never re-run blindly (see :mod:`perfloop.actions.executor`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = ActionStore(tmp)
...     store.start("inc-1:a1", "inc-1", "api", handler="log", now=1.0)
...     store.start("inc-1:a1", "inc-1", "api", handler="log", now=2.0)
...     store.finish("inc-1:a1", "applied", "ok", 3.5, now=2.0)
...     (store.get("inc-1:a1").state, store.get("inc-1:a1").reported)
...     store.close()
True
False
('done', False)
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    action_id TEXT PRIMARY KEY,
    incident_id TEXT,
    service TEXT,
    handler TEXT,
    state TEXT NOT NULL CHECK (state IN ('started', 'done')),
    status TEXT,
    detail TEXT NOT NULL DEFAULT '',
    duration_ms REAL NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    reported INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class StoredAction:
    """What the executor remembers of one command."""

    action_id: str
    incident_id: str | None
    service: str | None
    handler: str | None
    state: str
    status: str | None
    detail: str
    duration_ms: float
    reported: bool


class ActionStore:
    """A sqlite file ``actions.sqlite3`` in ``state_dir``; every write is durable."""

    def __init__(self, state_dir: str | Path) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(state_dir) / "actions.sqlite3"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def get(self, action_id: str) -> StoredAction | None:
        with self._lock:
            row = self._db.execute(
                "SELECT action_id, incident_id, service, handler, state, status, detail, "
                "duration_ms, reported FROM actions WHERE action_id = ?",
                (action_id,),
            ).fetchone()
        if row is None:
            return None
        action_id, incident_id, service, handler, state, status, detail, duration, rep = row
        return StoredAction(
            action_id, incident_id, service, handler, state, status, detail, duration, bool(rep)
        )

    def start(
        self, action_id: str, incident_id: str | None, service: str | None, *, handler: str,
        now: float,
    ) -> bool:  # fmt: skip
        """Claim ``action_id`` before running it; False if it was already claimed."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO actions (action_id, incident_id, service, handler, "
                "state, started_at) VALUES (?, ?, ?, ?, 'started', ?)",
                (action_id, incident_id, service, handler, now),
            )
        return cursor.rowcount == 1

    def finish(
        self, action_id: str, status: str, detail: str, duration_ms: float, *, now: float
    ) -> None:
        """Record the outcome of a claimed command (not yet reported)."""
        with self._lock:
            self._db.execute(
                "UPDATE actions SET state = 'done', status = ?, detail = ?, duration_ms = ?, "
                "finished_at = ? WHERE action_id = ?",
                (status, detail, duration_ms, now, action_id),
            )

    def mark_reported(self, action_id: str) -> None:
        """The result of ``action_id`` is on the results topic."""
        with self._lock:
            self._db.execute("UPDATE actions SET reported = 1 WHERE action_id = ?", (action_id,))

    def unfinished(self) -> list[str]:
        """Ids claimed but never finished: the executor stopped while they ran."""
        with self._lock:
            rows = self._db.execute("SELECT action_id FROM actions WHERE state = 'started'")
            return [row[0] for row in rows.fetchall()]

    def unreported(self) -> list[str]:
        """Ids finished whose result may not have reached the results topic."""
        with self._lock:
            rows = self._db.execute(
                "SELECT action_id FROM actions WHERE state = 'done' AND reported = 0"
            )
            return [row[0] for row in rows.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()
