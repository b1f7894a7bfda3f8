"""A dry run reports exactly what the same real run writes, on a store that already has rows."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tagsys.store.db import create_store_engine
from tests.engine.lakes import AS_OF, SHOP_TAGS, load_tags


def _content(db_url: str) -> list[tuple[str, str, str, object]]:
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT user_id, tag_ids, tag_details, updated_time FROM user_tags ORDER BY user_id"
                    )
                )
            )
    finally:
        engine.dispose()


def test_dry_run_counts_equal_the_real_runs_writes(make_api, db_url: str, shop_lake: Path) -> None:
    load_tags(db_url, SHOP_TAGS)
    api = make_api(db_url, shop_lake)
    api.run(api.request("task-all", as_of=AS_OF))
    engine = create_store_engine(db_url)
    with engine.begin() as conn:  # tag 104 renamed: stored details of its users are now old
        conn.execute(
            sa.text("UPDATE tag_definition SET tag_name = 'recent buyer v2' WHERE tag_id = 104")
        )
    engine.dispose()
    later = AS_OF.replace(day=20)  # relative dates move: some users gain or lose tags
    before = _content(db_url)

    dry = api.run(api.request("task-tags", tag_ids=[101, 102], as_of=later, dry_run=True))

    assert _content(db_url) == before, "a dry run wrote"
    real = api.run(api.request("task-tags", tag_ids=[101, 102], as_of=later))
    counts = lambda s: (s.rows_inserted, s.rows_updated, s.rows_unchanged)  # noqa: E731
    assert counts(dry) == counts(real)
    per_tag = lambda s: {t.tag_id: (t.matched, t.added, t.removed) for t in s.tags}  # noqa: E731
    assert per_tag(dry) == per_tag(real)
    old = {row[0]: row for row in before}
    new = {row[0]: row for row in _content(db_url)}
    assert real.rows_updated == sum(new[u] != row for u, row in old.items())
    assert real.rows_inserted == len(new) - len(old)
    assert dry.rows_updated > 0 and dry.rows_inserted > 0
