"""The published index in memory: one immutable snapshot per generation, refreshed when the
store publishes a new one (only the tags that changed are loaded)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from pyroaring import BitMap

from tagsys.audiences.expression import And, Node, Not, Or, Tag
from tagsys.store import audiences as store
from tagsys.store.db import read_transaction

EMPTY = BitMap()


@dataclass(frozen=True)
class Snapshot:
    """The index of one published generation (never changed once built)."""

    generation: int
    run_id: str | None
    published_at: datetime | None
    built: bool
    bitmaps: dict[int, BitMap] = field(default_factory=dict)

    @property
    def universe(self) -> BitMap:
        return self.bitmaps.get(store.UNIVERSE, EMPTY)

    def members(self, tag_id: int) -> BitMap:
        return self.bitmaps.get(tag_id, EMPTY)

    def evaluate(self, node: Node) -> BitMap:
        if isinstance(node, Tag):
            return self.members(node.tag_id)
        if isinstance(node, Not):
            return self.universe - self.evaluate(node.operand)
        if isinstance(node, Or):
            return BitMap.union(*(self.evaluate(o) for o in node.operands))
        return self._intersect(node)

    def _intersect(self, node: And) -> BitMap:
        """Positive operands intersected smallest first, then negated ones subtracted."""
        negated = [o.operand for o in node.operands if isinstance(o, Not)]
        positive = sorted(
            (self.evaluate(o) for o in node.operands if not isinstance(o, Not)), key=len
        )
        result = BitMap(positive[0]) if positive else BitMap(self.universe)
        for other in positive[1:]:
            result &= other
        for inner in negated:
            if not result:
                break
            result -= self.evaluate(inner)
        return result


def load(conn: sa.Connection, previous: Snapshot | None) -> Snapshot:
    """The published snapshot, reusing `previous`'s bitmaps of tags that did not change.
    Run in one transaction: the state and the rows it reads are one generation's."""
    state = store.read_state(bind=conn)
    if previous is not None and previous.generation == state.generation:
        return previous
    since, bitmaps = 0, {}
    if previous is not None and previous.generation < state.generation:
        since, bitmaps = previous.generation, dict(previous.bitmaps)
    for tag_id, _generation, blob in store.bitmaps_since(conn, since):
        bitmaps[tag_id] = BitMap.deserialize(blob)
    return Snapshot(state.generation, state.run_id, state.published_at, state.built, bitmaps)


class IndexReader:
    """The latest snapshot for readers of one store; thread-safe, cheap when nothing changed
    (one primary-key read per call)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self, conn: sa.Connection | None = None) -> Snapshot:
        """The latest snapshot, read in the caller's (read) transaction if given."""
        with self._lock:
            if conn is not None:
                self._snapshot = load(conn, self._snapshot)
            else:
                with read_transaction(self.engine) as own:
                    self._snapshot = load(own, self._snapshot)
            return self._snapshot
