"""What a client may ask the service to run, and how it becomes a `RunRequest`.

The trigger takes the seed's shape (`tag_ids`, `user_ids`, `mode: "full"`) and the
product's run modes (`task-all`, `task-tags`, `task-users`, `incremental` with `days`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from tagsys.engine.plan import EARLIEST_AS_OF, Mode, RunRequest
from tagsys.service.models import MAX_ID

MAX_TAG_IDS = 10_000
MAX_USER_IDS = 10_000
MAX_DAYS = 36_500

TriggerMode = Literal["full", "incremental", "task-all", "task-tags", "task-users"]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TagId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]  # 1.0, true, "1": refused


class TriggerRequest(BaseModel):
    """`POST /api/v1/tags/trigger` (also the run request of a schedule)."""

    model_config = ConfigDict(extra="forbid")

    tag_ids: list[TagId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_TAG_IDS,
        description="tags to compute; omitted: every tag",
        examples=[[1, 2, 3]],
    )
    user_ids: list[UserId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_USER_IDS,
        description="users to compute; omitted: every user",
        examples=[["user_000001", "user_000002"]],
    )
    mode: TriggerMode = Field(
        "full",
        description="`full` (the seed's: tags and users as given), `incremental` (with "
        "`days`), or a product run mode",
    )
    days: int | None = Field(None, ge=0, le=MAX_DAYS, description="incremental: look back N days")
    as_of: date | None = Field(
        None, ge=EARLIEST_AS_OF, description="business date (default: today)"
    )
    dry_run: StrictBool = Field(False, description="compute and report, write nothing")

    @model_validator(mode="after")
    def _consistent(self) -> TriggerRequest:
        self.run_mode()  # raises on a contradiction
        return self

    def run_mode(self) -> Mode:
        mode = self.mode
        if mode != "incremental" and self.days is not None:
            raise ValueError(f"days applies to mode 'incremental' only, not {mode!r}")
        if mode == "full":
            if self.user_ids is not None:
                return "task-users"
            return "task-tags" if self.tag_ids is not None else "task-all"
        if mode == "incremental" and self.days is None:
            raise ValueError("mode 'incremental' needs days (how many days to look back)")
        if mode == "task-tags" and self.tag_ids is None:
            raise ValueError("mode 'task-tags' needs tag_ids")
        if mode == "task-users" and self.user_ids is None:
            raise ValueError("mode 'task-users' needs user_ids")
        if mode == "task-all" and self.tag_ids is not None:
            raise ValueError("mode 'task-all' runs every tag: leave out tag_ids or use 'task-tags'")
        if mode in ("task-all", "task-tags", "incremental") and self.user_ids is not None:
            raise ValueError(f"mode {mode!r} runs over all users: for some users use 'task-users'")
        return mode

    def to_run_request(self, today: date) -> RunRequest:
        return RunRequest(
            mode=self.run_mode(),
            as_of=self.as_of or today,
            tag_ids=tuple(sorted(set(self.tag_ids))) if self.tag_ids is not None else None,
            user_ids=tuple(dict.fromkeys(self.user_ids)) if self.user_ids is not None else None,
            days=self.days,
            dry_run=self.dry_run,
        )

    def explicit_nulls(self) -> list[str]:
        """Lists sent as null: null would mean every tag (or user), which a client that sent
        an empty variable did not ask for. Omitting the field means that."""
        return [
            f
            for f in ("tag_ids", "user_ids")
            if f in self.model_fields_set and getattr(self, f) is None
        ]

    def stored(self) -> dict[str, Any]:
        """As kept in `tag_jobs.request` (JSON)."""
        return self.model_dump(mode="json")


class RollbackRequest(BaseModel):
    """`POST /api/v1/runs/{run_id}/rollback` (no body: a real rollback). Strict: a dry run
    misspelled or sent as a form must not turn into a real one."""

    model_config = ConfigDict(extra="forbid")

    dry_run: StrictBool = Field(False, description="only count what would be restored")
