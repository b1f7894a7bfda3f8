"""Dense id -> user id for whole audiences (exports): `user_index` held in memory as Arrow
arrays, loaded once and then extended by the ids assigned since (ids are never reused)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from pyroaring import BitMap

from tagsys.store import audiences as store
from tagsys.store.db import read_transaction

BATCH = 200_000


class UserIds:
    """Thread-safe; `refresh` costs one indexed query when nothing was assigned."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._idx = np.empty(0, dtype=np.int64)
        self._users: pa.ChunkedArray = pa.chunked_array([], pa.string())
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            last = int(self._idx[-1]) if len(self._idx) else 0
            idx_parts, user_parts = [self._idx], list(self._users.chunks)
            with read_transaction(self.engine) as conn:
                for idx, users in store.ids_after(conn, last, BATCH):
                    idx_parts.append(np.asarray(idx, dtype=np.int64))
                    user_parts.append(pa.array(users, pa.string()))
            self._idx = np.concatenate(idx_parts)
            self._users = pa.chunked_array(user_parts, pa.string())

    def chunks(self, members: BitMap, size: int) -> Iterator[pa.Array]:
        """The user ids of `members`, `size` at a time, in dense-id order."""
        self.refresh()
        with self._lock:
            idx, users = self._idx, self._users.combine_chunks()
        wanted = np.asarray(members.to_array(), dtype=np.int64)
        positions = np.searchsorted(idx, wanted)
        found = positions < len(idx)
        found[found] &= idx[positions[found]] == wanted[found]
        positions = positions[found]
        for start in range(0, len(positions), size):
            yield users.take(pa.array(positions[start : start + size]))
