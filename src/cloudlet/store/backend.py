"""Storage backends: where the revision log lives.

A backend is an append-only log of rows ``(revision, key, type, value)``.
The :class:`~cloudlet.store.store.Store` owns all logic (revisions,
compare-and-swap, watch); a backend only has to persist and reload rows.

Contract:

* :meth:`Backend.append` persists a batch of rows atomically and durably: when
  it returns, every row survives a crash (``kill -9``, power loss for SQLite
  with ``synchronous=FULL``). It is called from a worker thread, never
  concurrently with itself.
* :meth:`Backend.load` returns every stored row in revision order, and the
  compacted revision (0 if never compacted).
* :meth:`Backend.compact` deletes the given superseded rows and records the
  new compacted revision, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

_TYPE_CODES = {ADDED: 0, MODIFIED: 1, DELETED: 2}
_CODE_TYPES = {v: k for k, v in _TYPE_CODES.items()}


@dataclass(slots=True)
class Row:
    revision: int
    key: str
    type: str
    value: bytes


class Backend(Protocol):
    def load(self) -> tuple[list[Row], int]: ...

    def append(self, rows: list[Row]) -> None: ...

    def compact(self, revision: int, drop: list[int]) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """Keeps rows in a list: no durability, for unit tests."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.compacted = 0

    def load(self) -> tuple[list[Row], int]:
        return list(self.rows), self.compacted

    def append(self, rows: list[Row]) -> None:
        self.rows.extend(rows)

    def compact(self, revision: int, drop: list[int]) -> None:
        gone = set(drop)
        self.rows = [r for r in self.rows if r.revision not in gone]
        self.compacted = revision

    def close(self) -> None:
        return None


def type_code(t: str) -> int:
    return _TYPE_CODES[t]


def code_type(c: int) -> str:
    return _CODE_TYPES[c]
