"""Whether the published audience index agrees with user_tags: it is built, has taken in
every finished run, and holds the same number of users per tag as user_tags does."""

from __future__ import annotations

import sqlalchemy as sa

from tagsys.audiences.maintain import pending
from tagsys.errors import TagSysError
from tagsys.store import audiences as store
from tagsys.store.db import read_transaction
from tagsys.store.runs import RunRecord

FIX = "run --mode reindex to rebuild it"


def check(engine: sa.Engine) -> str:
    """A one-line description of a healthy index, else TagSysError saying what disagrees."""
    with read_transaction(engine) as conn:  # one snapshot of index and rows, no write lock
        state = store.read_state(bind=conn)
        behind, going = pending(conn)
        indexed = {t: c for t, c in store.member_counts(bind=conn).items() if c}
        counted = {t: c for t, c in store.row_counts(bind=conn).items() if c}
    if not state.built:
        return _unbuilt(counted, going)
    if behind:
        runs = ", ".join(r.run_id for r in behind[:3])
        raise TagSysError(
            f"the audience index is behind user_tags: {len(behind)} finished runs not taken in "
            f"({runs}); the next run takes them in, or {FIX}"
        )
    if indexed != counted and not going:
        tags = sorted(t for t in set(indexed) | set(counted) if indexed.get(t) != counted.get(t))
        shown = "; ".join(
            f"{'users with a row' if t == store.UNIVERSE else f'tag {t}'}: index "
            f"{indexed.get(t, 0)}, user_tags {counted.get(t, 0)}"
            for t in tags[:5]
        )
        raise TagSysError(f"the audience index disagrees with user_tags ({shown}): {FIX}")
    users = indexed.get(store.UNIVERSE, 0)
    agrees = "matches user_tags" if indexed == counted else "user_tags is being written"
    note = f" ({len(going)} runs in progress)" if going else ""
    return (
        f"generation {state.generation} (run {state.run_id}), {users} users, "
        f"{len(indexed) - (1 if users else 0)} tags, {agrees}{note}"
    )


def _unbuilt(counted: dict[int, int], going: list[RunRecord]) -> str:
    """An index never built is expected before the first run ends, a fault after it."""
    if going:
        return f"not built yet: the first run to finish builds it ({len(going)} in progress)"
    if not counted:
        return "not built yet: user_tags is empty (the first run builds it)"
    raise TagSysError(f"the audience index has never been built: {FIX}")
