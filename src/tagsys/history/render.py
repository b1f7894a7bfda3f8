"""History pages as text for the command line."""

from __future__ import annotations

from tagsys.history.timeline import TagHistoryPage, UserHistoryPage


def _ids(ids: list[int] | None) -> str:
    return "-" if ids is None else (",".join(map(str, ids)) or "[]")


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _more(cursor: str | None) -> list[str]:
    return [f"more: --cursor {cursor}"] if cursor else []


def render_user_page(page: UserHistoryPage) -> str:
    if not page.changes:
        return f"user {page.user_id}: no journaled changes"
    lines = [
        f"user {page.user_id}: changes, newest first",
        f"  {'written at (UTC)':<26} {'run':<32} {'mode':<11} {'entered':<12} {'exited':<12} tags after",
    ]
    for c in page.changes:
        lines.append(
            f"  {c.written_at.isoformat(sep=' ', timespec='seconds'):<26} {c.run_id:<32} "
            f"{c.mode or '?':<11} {_ids(c.entered):<12} {_ids(c.exited):<12} {_ids(c.tag_ids)}"
        )
    return "\n".join(lines + _more(page.next_cursor))


def render_tag_page(page: TagHistoryPage) -> str:
    if not page.runs:
        return f"tag {page.tag_id}: no journaled runs"
    lines = [
        f"tag {page.tag_id}: runs, newest first (members after each run; ? = no journal)",
        f"  {'started (UTC)':<26} {'run':<32} {'mode':<11} {'status':<10} "
        f"{'entered':>8} {'exited':>8} {'members':>9}",
    ]
    for r in page.runs:
        lines.append(
            f"  {r.started_at.isoformat(sep=' ', timespec='seconds'):<26} {r.run_id:<32} "
            f"{r.mode:<11} {r.status:<10} {_count(r.entered):>8} {_count(r.exited):>8} "
            f"{_count(r.members):>9}"
        )
    return "\n".join(lines + _more(page.next_cursor))
