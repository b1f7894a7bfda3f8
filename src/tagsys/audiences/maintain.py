"""Keeping the index in step with user_tags. After every run that wrote (and every
rollback), the users its journal names are re-read from user_tags and their membership
replaced in the bitmaps; the result is published as the next generation in one
transaction. Runs that wrote without a journal, or an index never built, rebuild it whole
from user_tags (`--mode reindex` does the same on request)."""

from __future__ import annotations

import array
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pyroaring import BitMap

from tagsys.audiences import index as index_module
from tagsys.audiences.expression import parse
from tagsys.audiences.index import EMPTY
from tagsys.errors import StoreError
from tagsys.store import audiences as store
from tagsys.store.db import read_transaction, transaction
from tagsys.store.runs import RunRecord, end_abandoned

log = logging.getLogger(__name__)
FINAL = ("completed", "failed", "cancelled", "abandoned")
ENDED = ("completed", "failed", "cancelled")
REBUILD_MIN_ROWS = 100_000
"""Below this many rows written, runs are always taken in from their journal."""


@dataclass(frozen=True)
class Publication:
    """What one maintenance did."""

    generation: int
    runs: list[str]
    users: int
    tags_changed: int
    rebuilt: bool
    seconds: float

    def render(self) -> str:
        how = "rebuilt from user_tags" if self.rebuilt else f"{self.users} users re-read"
        return (
            f"audience index generation {self.generation}: {how}, {self.tags_changed} tag "
            f"bitmaps replaced, {len(self.runs)} runs taken in ({self.seconds:.2f} s)"
        )


def _needs_rebuild(run: RunRecord) -> bool:
    """A run that may have written rows the journal does not name."""
    if run.journal == "on" or (run.summary or {}).get("dry_run"):
        return False
    return run.rows_written is None or run.rows_written > 0


def catch_up(engine: sa.Engine) -> Publication | None:
    """Take in every finished run the index does not hold yet; None when there is none."""
    started = time.perf_counter()
    _end_abandoned(engine)
    with transaction(engine) as conn:
        state = store.lock_state(conn)
        if state.built:
            unapplied = store.unapplied_runs(conn)
            pending = _ended(unapplied)
            if not pending:
                return None
            previous = index_module.load(conn, None)
            if not any(_needs_rebuild(r) for r in pending) and not _mostly_rewritten(
                pending, previous
            ):
                journaled = [r.run_id for r in pending if r.journal == "on"]
                bitmaps, users = _apply(conn, previous, journaled)
                bitmaps = _hold_unfinished(conn, previous, bitmaps, unapplied, journaled)
                return _publish(conn, state, previous, bitmaps, pending, users, False, started)
    # Never built, a run that wrote without a journal, or most rows rewritten: a rebuild,
    # whose ids are assigned ahead of its own transaction.
    return rebuild(engine)


def refresh(engine: sa.Engine) -> Publication | None:
    """`catch_up` when a finished run was not taken in (its process died before its
    maintenance, or it ran elsewhere) or the index was never built (an adopted store); else
    only two small reads."""
    with read_transaction(engine) as conn:  # waits for no writer
        behind = bool(pending(conn)[0]) or not store.read_state(bind=conn).built
    return catch_up(engine) if behind else None


def _mostly_rewritten(runs: list[RunRecord], previous: index_module.Snapshot) -> bool:
    """Whether the runs wrote more rows than half the users the index holds: reading every
    row in id order (a rebuild) is then cheaper than looking each journaled user up."""
    written = sum(r.rows_written or 0 for r in runs)
    return written > max(REBUILD_MIN_ROWS, len(previous.universe) // 2)


def rebuild(bind: sa.Engine | sa.Connection) -> Publication:
    """Build the whole index again from user_tags (in the caller's transaction, given one)."""
    started = time.perf_counter()
    _end_abandoned(bind)
    ahead = isinstance(bind, sa.Engine)
    if isinstance(bind, sa.Engine):
        store.assign_ids_ahead(bind)
    with transaction(bind) as conn:
        publication = _rebuild(conn, store.lock_state(conn), started, ahead)
    return publication


def _rebuild(
    conn: sa.Connection, state: store.IndexState, started: float, assigned_ahead: bool
) -> Publication:
    """Every user_tags row read again. With ids `assigned_ahead`, only the users of runs that
    ended since get theirs here (from their journal: nobody writes an ended run's entries);
    rows of runs still going that have none yet are left to those runs' own intake."""
    unapplied = store.unapplied_runs(conn)
    final = _ended(unapplied)
    if assigned_ahead and not any(_needs_rebuild(r) for r in final):
        store.assign_ids(conn, [r.run_id for r in final if r.journal == "on"])
    else:
        store.assign_ids(conn, None)
    members = Members.read(store.membership(conn, None))
    bitmaps = dict(members.by_tag)
    bitmaps[store.UNIVERSE] = members.present
    previous = index_module.load(conn, None)
    for tag_id in previous.bitmaps:  # tags nobody holds any more
        bitmaps.setdefault(tag_id, BitMap())
    bitmaps = _hold_unfinished(conn, previous, bitmaps, unapplied, None)
    return _publish(conn, state, previous, bitmaps, final, len(members.present), True, started)


def _hold_unfinished(
    conn: sa.Connection,
    previous: index_module.Snapshot,
    bitmaps: dict[int, BitMap],
    unapplied: list[RunRecord],
    taken: list[str] | None,
) -> dict[int, BitMap]:
    """`bitmaps` (changed tags over `previous`) with every user a still running run has
    written put back as it was before the first running run wrote it: readers never see part
    of a run (its own intake, once it ends, publishes those users as they are then). With
    `taken` (the runs whose users were re-read), only their users: the others are published
    as `previous` holds them, which is as they were before. None: a rebuild re-read all."""
    running = [r.run_id for r in unapplied if r.status == "running" and r.journal == "on"]
    held = _before_running(conn, running, taken)
    if not held.touched:
        return bitmaps
    result = dict(bitmaps)
    for tag_id in set(previous.bitmaps) | set(bitmaps) | set(held.by_tag) | {store.UNIVERSE}:
        current = bitmaps[tag_id] if tag_id in bitmaps else previous.members(tag_id)
        before = held.present if tag_id == store.UNIVERSE else held.by_tag.get(tag_id, EMPTY)
        if not before and current.isdisjoint(held.touched):
            continue
        kept = (current - held.touched) | before
        if tag_id in bitmaps or kept != current:
            result[tag_id] = kept
    return result


def _before_running(conn: sa.Connection, running: list[str], taken: list[str] | None) -> Members:
    """The users the running runs journaled (of them, those the `taken` runs journaled too),
    each with its row before the first running run that wrote it (the first-started run's
    entry if that cannot be told, e.g. a row a running rollback deleted and another re-made).
    Runs writing without a journal cannot be held: which users they wrote is not known."""
    touched, present, by_tag = BitMap(), BitMap(), dict[int, BitMap]()
    for run_id in running:  # oldest first
        chunks = itertools.chain.from_iterable(
            store.before_images(conn, run_id, running=running, taken=other)
            for other in ([None] if taken is None else taken)
        )
        part = Members.read(chunks)
        new = part.touched - touched
        touched |= new
        present |= part.present & new
        for tag_id, users in part.by_tag.items():
            by_tag[tag_id] = by_tag.get(tag_id, BitMap()) | (users & new)
    return Members(touched, present, by_tag)


def _apply(
    conn: sa.Connection, previous: index_module.Snapshot, run_ids: list[str]
) -> tuple[dict[int, BitMap], int]:
    """The bitmaps after re-reading the users the runs journaled (only tags that change)."""
    if not run_ids:
        return {}, 0
    store.assign_ids(conn, run_ids)
    members = Members.read(store.membership(conn, run_ids))
    affected = members.touched
    changed: dict[int, BitMap] = {}
    universe = (previous.universe - affected) | members.present
    if universe != previous.universe:
        changed[store.UNIVERSE] = universe
    for tag_id in set(previous.bitmaps) | set(members.by_tag):
        if tag_id == store.UNIVERSE:
            continue
        old = previous.members(tag_id)
        new = (old - affected) | members.by_tag.get(tag_id, EMPTY)
        if new != old:
            changed[tag_id] = new
    return changed, len(affected)


@dataclass(frozen=True)
class Members:
    """Rows read for the index, as bitmaps: every user read, those with a row, and per tag."""

    touched: BitMap
    present: BitMap
    by_tag: dict[int, BitMap]

    @classmethod
    def read(cls, chunks: Iterable[pa.Table]) -> Members:
        """From the rows chunk by chunk: the driver holds one chunk's text and arrays at a
        time, and the bitmaps (compressed) of all."""
        touched, present, by_tag = BitMap(), BitMap(), dict[int, BitMap]()
        for chunk in chunks:
            part = cls.of(chunk)
            touched |= part.touched
            present |= part.present
            for tag_id, users in part.by_tag.items():
                if tag_id in by_tag:
                    by_tag[tag_id] |= users
                else:
                    by_tag[tag_id] = users
        return cls(touched, present, by_tag)

    @classmethod
    def of(cls, rows: pa.Table) -> Members:
        """From (idx, tag_ids JSON text) rows, vectorised: the ids are split out of the text
        by pyarrow and grouped by tag with numpy (a million rows in about a second)."""
        idx = _dense(rows.column("idx"))
        texts = rows.column("tag_ids")
        present = idx[pc.is_valid(texts).to_numpy(zero_copy_only=False)]
        parts = pc.split_pattern(pc.utf8_trim(texts.fill_null("[]"), "[] \n\t\r"), ",")
        values = pc.utf8_trim(pc.list_flatten(parts), ' "\n\t\r')
        owners = pc.list_parent_indices(parts)
        keep = pc.not_equal(values, "")
        try:
            tags = pc.cast(values.filter(keep), pa.int64()).to_numpy()
        except pa.ArrowInvalid as exc:
            raise StoreError(
                f"a user_tags row's tag_ids is not a JSON array of ids: {exc}"
            ) from exc
        users = idx[owners.filter(keep).to_numpy()]
        order = _grouping_order(tags)
        tags, users = tags[order], users[order]
        starts = np.flatnonzero(np.diff(tags, prepend=tags[:1] - 1)) if tags.size else tags
        bounds = [*starts.tolist(), int(tags.size)]
        by_tag = {int(tags[lo]): _bitmap(users[lo:hi]) for lo, hi in itertools.pairwise(bounds)}
        return cls(_bitmap(idx), _bitmap(present), by_tag)


def _grouping_order(tags: np.ndarray) -> np.ndarray:
    """An order that groups equal tag ids: a radix sort when the ids fit 16 bits (20x
    faster than a quicksort of many repeated values)."""
    if tags.size and tags.min() >= 0 and tags.max() <= np.iinfo(np.uint16).max:
        small: np.ndarray = np.argsort(tags.astype(np.uint16), kind="stable")
        return small
    general: np.ndarray = np.argsort(tags, kind="stable")
    return general


def _dense(column: pa.ChunkedArray) -> np.ndarray:
    ids = column.to_numpy()
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.uint32).max):
        raise StoreError(
            "a dense user id in user_index is outside 0..4294967295, the index's range: "
            "rebuild user_index (`--mode reindex` after emptying it)"
        )
    dense: np.ndarray = ids.astype(np.uint32)
    return dense


def _bitmap(ids: np.ndarray) -> BitMap:
    return BitMap(array.array("I", np.ascontiguousarray(ids, dtype=np.uint32).tobytes()))


def _publish(
    conn: sa.Connection,
    state: store.IndexState,
    previous: index_module.Snapshot,
    bitmaps: dict[int, BitMap],
    runs: list[RunRecord],
    users: int,
    rebuilt: bool,
    started: float,
) -> Publication:
    run_id = runs[-1].run_id if runs else state.run_id
    blobs = {t: (len(b), b.serialize()) for t, b in bitmaps.items()}
    published = store.publish(
        conn,
        state=state,
        bitmaps=blobs,
        runs=[r.run_id for r in runs],
        run_id=run_id,
        rebuilt=rebuilt,
        now=datetime.now(UTC),
    )
    merged = dict(previous.bitmaps)
    merged.update(bitmaps)
    snapshot = index_module.Snapshot(
        published.generation, run_id, published.published_at, True, merged
    )
    _record_sizes(conn, snapshot)
    return Publication(
        published.generation,
        [r.run_id for r in runs],
        users,
        len(bitmaps),
        rebuilt,
        time.perf_counter() - started,
    )


def _record_sizes(conn: sa.Connection, snapshot: index_module.Snapshot) -> None:
    """Every saved audience's size at this generation (one whose tags were deleted since it
    was saved is skipped and logged)."""
    saved = store.list_audiences(bind=conn)
    if not saved:
        return
    tags = store.tag_refs(bind=conn)
    sizes: dict[str, int] = {}
    for audience in saved:
        try:
            sizes[audience.name] = len(snapshot.evaluate(parse(audience.expression, tags)))
        except Exception as exc:  # one broken audience must not stop the publication
            log.warning("saved audience %s not sized: %s", audience.name, exc)
    store.record_sizes(conn, generation=snapshot.generation, run_id=snapshot.run_id, sizes=sizes)


def _end_abandoned(bind: sa.Engine | sa.Connection) -> None:
    """Record the runs read as abandoned as ended (unless they beat again), each in its own
    transaction, before maintenance opens its own: else a run that was only slow could write
    behind the index once it had been taken in. Ending one waits for its writers' commits,
    which must not happen while the index's lock is held."""
    if isinstance(bind, sa.Connection):
        runs = store.unapplied_runs(bind)
    else:
        with read_transaction(bind) as conn:
            runs = store.unapplied_runs(conn)
    for run in runs:
        if run.effective_status() == "abandoned":
            end_abandoned(bind=bind, run=run)


def _ended(runs: list[RunRecord]) -> list[RunRecord]:
    """The runs recorded as ended (one read as abandoned now is taken in once ended)."""
    return [r for r in runs if r.effective_status() in ENDED]


def pending(bind: sa.Engine | sa.Connection) -> tuple[list[RunRecord], list[RunRecord]]:
    """(finished runs the index has not taken in, runs still going on)."""
    if isinstance(bind, sa.Connection):
        runs = store.unapplied_runs(bind)
    else:
        with read_transaction(bind) as conn:
            runs = store.unapplied_runs(conn)
    done = [r for r in runs if r.effective_status() in FINAL]
    return done, [r for r in runs if r.effective_status() not in FINAL]
