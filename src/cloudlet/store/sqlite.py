"""SQLite backend: the revision log in one WAL-mode database file.

The table ``log`` holds one row per write; its integer primary key *is* the
revision. Durability is ``journal_mode=WAL`` + ``synchronous=FULL``: a commit
returns only after the WAL is fsynced. A batch of rows is one transaction,
which is how concurrent writers share one durable commit (group commit; the
batching itself happens in :class:`~cloudlet.store.store.Store`).

Only one process may own a database: :class:`SQLiteBackend` takes an
exclusive ``flock`` on ``<path>.lock`` and fails fast if another process holds
it. All methods are blocking; the store calls them from a worker thread.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

from cloudlet.store.backend import Row, code_type, type_code


class StoreLockedError(RuntimeError):
    pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    type INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v INTEGER NOT NULL
);
"""


class SQLiteBackend:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lockfd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lockfd)
            raise StoreLockedError(f"{path} is in use by another cloudlet process") from e
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._mu = threading.Lock()

    def load(self) -> tuple[list[Row], int]:
        with self._mu:
            cur = self._db.execute("SELECT v FROM meta WHERE k='compacted'")
            got = cur.fetchone()
            compacted = int(got[0]) if got else 0
            rows = [
                Row(rid, name, code_type(t), bytes(value))
                for rid, name, t, value in self._db.execute(
                    "SELECT id, name, type, value FROM log ORDER BY id"
                )
            ]
        return rows, compacted

    def append(self, rows: list[Row]) -> None:
        with self._mu:
            db = self._db
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT INTO log (id, name, type, value) VALUES (?, ?, ?, ?)",
                    [(r.revision, r.key, type_code(r.type), r.value) for r in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def compact(self, revision: int, drop: list[int]) -> None:
        with self._mu:
            db = self._db
            db.execute("BEGIN")
            try:
                for i in range(0, len(drop), 500):
                    chunk = drop[i : i + 500]
                    db.execute(
                        f"DELETE FROM log WHERE id IN ({','.join('?' * len(chunk))})", chunk
                    )
                db.execute(
                    "INSERT INTO meta (k, v) VALUES ('compacted', ?) "
                    "ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                    (revision,),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._mu:
            try:
                self._db.close()
            finally:
                os.close(self._lockfd)
