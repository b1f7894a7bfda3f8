from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from tagsys.store import repository as repo

RULE = {
    "logic": "AND",
    "conditions": [{"field": "total_asset_value", "operator": ">=", "value": 100000}],
}
RULE_TEXT = '{"logic": "OR", "conditions": [{"field": "city", "operator": "=", "value": "北京"}]}'


def test_categories_upsert_by_name_or_id_is_idempotent(engine: sa.Engine) -> None:
    first = repo.upsert_category(bind=engine, category_name="财富", description="资产")
    again = repo.upsert_category(bind=engine, category_name="财富", description="资产等级")
    explicit = repo.upsert_category(bind=engine, category_name="行为", category_id=7)
    repo.upsert_category(bind=engine, category_name="行为分析", category_id=7, is_active=False)

    rows = repo.list_categories(bind=engine)
    assert first == again
    assert explicit == 7
    assert [(r["category_id"], r["category_name"], r["is_active"]) for r in rows] == [
        (first, "财富", True),
        (7, "行为分析", False),
    ]
    assert rows[0]["description"] == "资产等级"


def test_definitions_carry_active_rules_as_raw_text(engine: sa.Engine) -> None:
    repo.upsert_tag(bind=engine, tag_id=1, tag_name="高净值用户", tag_category="财富")
    repo.upsert_tag(bind=engine, tag_id=2, tag_name="停用标签", tag_category="x", is_active=False)
    repo.upsert_tag(bind=engine, tag_id=3, tag_name="无规则", tag_category="x", description="d")
    repo.replace_rules(bind=engine, tag_id=1, rules=[RULE, RULE_TEXT])
    repo.replace_rules(bind=engine, tag_id=2, rules=[RULE])

    active = repo.load_active_definitions(bind=engine)
    everything = repo.load_all_definitions(bind=engine)

    assert [d.tag_id for d in active] == [1, 3]
    assert [d.tag_id for d in everything] == [1, 2, 3]
    high_net_worth = active[0]
    assert high_net_worth.tag_name == "高净值用户"
    assert [json.loads(text) for _, text in high_net_worth.rules] == [RULE, json.loads(RULE_TEXT)]
    assert high_net_worth.rules[1][1].replace(" ", "") == RULE_TEXT.replace(" ", "")
    assert active[1].rules == ()
    assert active[1].description == "d"
    assert repo.definition_infos(active)[1].tag_category == "财富"


def test_inactive_rules_are_not_loaded(engine: sa.Engine) -> None:
    repo.upsert_tag(bind=engine, tag_id=1, tag_name="t", tag_category="c")
    (rule_id,) = repo.replace_rules(bind=engine, tag_id=1, rules=[RULE])
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE tag_rules SET is_active = 0 WHERE rule_id = :r"), {"r": rule_id}
        )

    assert repo.load_active_definitions(bind=engine)[0].rules == ()


def test_replace_rules_keeps_ids_when_content_is_the_same(engine: sa.Engine) -> None:
    tag_id = repo.upsert_tag(bind=engine, tag_name="年轻用户", tag_category="人口")
    assert repo.upsert_tag(bind=engine, tag_name="年轻用户", tag_category="人口") == tag_id

    first = repo.replace_rules(bind=engine, tag_id=tag_id, rules=[RULE])
    same = repo.replace_rules(bind=engine, tag_id=tag_id, rules=[json.dumps(RULE, indent=2)])
    changed = repo.replace_rules(bind=engine, tag_id=tag_id, rules=[RULE_TEXT])

    assert same == first
    assert changed != first
    assert len(repo.load_active_definitions(bind=engine)[0].rules) == 1


def test_repository_functions_join_the_callers_transaction(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        repo.upsert_tag(bind=conn, tag_id=5, tag_name="t", tag_category="c")
        conn.rollback()
    assert repo.load_all_definitions(bind=engine) == []


def test_job_lifecycle_round_trips(engine: sa.Engine) -> None:
    submitted = datetime(2026, 1, 20, 10, 30, tzinfo=UTC)
    request = {"tag_ids": [1, 2, 3], "user_ids": None, "note": "中文"}
    job = repo.create_job(
        bind=engine, job_id="j1", request=request, environment="local", submitted_at=submitted
    )
    assert (job.status, job.request, job.submitted_at, job.result) == (
        "submitted",
        request,
        submitted,
        None,
    )

    assert repo.set_job_status(bind=engine, job_id="j1", status="running")
    assert repo.set_job_status(
        bind=engine, job_id="j1", status="completed", result={"total_users": 285}
    )

    done = repo.get_job(bind=engine, job_id="j1")
    assert done is not None
    assert done.status == "completed"
    assert done.result == {"total_users": 285}
    assert done.started_at is not None and done.completed_at is not None
    assert done.started_at.tzinfo is not None
    assert repo.get_job(bind=engine, job_id="nope") is None


def test_a_cancelled_job_stays_cancelled(engine: sa.Engine) -> None:
    repo.create_job(bind=engine, job_id="j1", request={})
    assert repo.set_job_status(bind=engine, job_id="j1", status="cancelled")

    assert not repo.set_job_status(bind=engine, job_id="j1", status="running")
    assert not repo.set_job_status(bind=engine, job_id="j1", status="completed")
    job = repo.get_job(bind=engine, job_id="j1")
    assert job is not None and job.status == "cancelled"


def test_running_jobs_are_failed_on_service_start(engine: sa.Engine) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for index, job_id in enumerate(["queued", "busy", "done"]):
        repo.create_job(
            bind=engine, job_id=job_id, request={}, submitted_at=base + timedelta(minutes=index)
        )
    repo.set_job_status(bind=engine, job_id="busy", status="running")
    repo.set_job_status(bind=engine, job_id="done", status="running")
    repo.set_job_status(bind=engine, job_id="done", status="completed", result={})

    assert repo.fail_interrupted_jobs(bind=engine, reason="service restarted") == 1

    jobs = {j.job_id: j for j in repo.list_jobs(bind=engine)}
    assert [j.job_id for j in repo.list_jobs(bind=engine)] == ["done", "busy", "queued"]
    assert (jobs["busy"].status, jobs["busy"].error) == ("failed", "service restarted")
    assert jobs["queued"].status == "submitted"
    assert [j.job_id for j in repo.list_jobs(bind=engine, status="failed")] == ["busy"]


def test_run_records_round_trip_and_latest(engine: sa.Engine) -> None:
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    for index, mode in enumerate(["task-all", "task-tags", "task-all"]):
        repo.insert_run(
            bind=engine,
            run=repo.RunRecord(
                run_id=f"r{index}",
                mode=mode,
                as_of=date(2026, 3, 1),
                started_at=start + timedelta(hours=index),
                finished_at=start + timedelta(hours=index, minutes=5),
                status="completed",
                summary={"users_evaluated": index, "tags": {"1": 10}, "说明": "好"},
            ),
        )

    latest = repo.get_latest_run(bind=engine)
    latest_tags = repo.get_latest_run(bind=engine, mode="task-tags")
    assert latest is not None and latest.run_id == "r2"
    assert latest.summary == {"users_evaluated": 2, "tags": {"1": 10}, "说明": "好"}
    assert latest.started_at == start + timedelta(hours=2)
    assert latest_tags is not None and latest_tags.run_id == "r1"
    assert repo.get_run(bind=engine, run_id="r0") is not None
    assert repo.get_latest_run(bind=engine, mode="incremental") is None
