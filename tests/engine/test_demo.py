"""The seed's 8 tags on the demo lake equal the SPEC's semantics computed independently."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tagsys.demo.generator import generate_lake
from tagsys.demo.loader import load_seed_tags
from tagsys.demo.seed_tags import SEED_TAGS
from tagsys.store import repository
from tagsys.store.db import create_store_engine
from tagsys.store.migrate import upgrade
from tests.engine.lakes import expected_tags

AS_OF = date(2024, 6, 30)


def test_seed_tags_on_demo_lake(db_url: str, make_api, tmp_path: Path) -> None:
    lake = tmp_path / "demo-lake"
    generate_lake(lake, 800, AS_OF, seed=7)
    upgrade(db_url)
    load_seed_tags(db_url)
    api = make_api(db_url, lake)
    summary = api.run(api.request("task-all", as_of=AS_OF))
    assert summary.succeeded, summary.render()

    tags = {t.tag_id: (t.tag_name, t.tag_category, t.rules) for t in SEED_TAGS}
    expected = {u: sorted(t) for u, t in expected_tags(lake, tags, AS_OF).items() if t}
    engine = create_store_engine(db_url)
    stored = repository.read_user_tags(bind=engine)
    engine.dispose()
    assert {u: r.tag_ids for u, r in stored.items()} == expected
    for tag in SEED_TAGS:
        matched = sum(tag.tag_id in t for t in expected.values())
        assert 0 < matched < 800, f"tag {tag.tag_id} should split the demo users"
    row = stored["user_000001"]
    assert row.tag_ids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert row.tag_details[1] == {"tag_name": "高净值用户", "tag_category": "财富管理"}
