"""Response shapes shared by the routes (the seed's, plus the product's additions)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from tagsys.service.errors import ApiError
from tagsys.store.jobs import JobRecord

MAX_PAGE = 1000


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    success: bool = False
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "the body is not valid JSON"),
        (401, "no API key, or a wrong one"),
        (404, "not found"),
        (409, "conflicts with the current state"),
        (422, "the request is not valid; details say where"),
        (429, "the job queue is full; retry after Retry-After seconds"),
        (503, "the store or the lake cannot be reached"),
    )
}


class JobStatus(BaseModel):
    """The seed's task status object."""

    task_id: str
    status: str = Field(description="submitted, running, completed, failed or cancelled")
    mode: str | None = None
    tag_ids: list[int] | None = None
    user_ids: list[str] | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    run_id: str | None = None
    cancel_requested: bool = False
    actor: str | None = None
    schedule_id: int | None = None
    environment: str | None = None

    @classmethod
    def of(cls, job: JobRecord) -> JobStatus:
        request = job.request or {}
        return cls(
            task_id=job.job_id,
            status=job.status,
            mode=request.get("mode"),
            tag_ids=request.get("tag_ids"),
            user_ids=request.get("user_ids"),
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            result=job.result,
            error=job.error,
            run_id=job.run_id,
            cancel_requested=job.cancel_requested,
            actor=job.actor,
            schedule_id=job.schedule_id,
            environment=job.environment,
        )


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[str] | None:
    """The parts of a cursor this service handed out; a 422 for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ApiError(
            422,
            "invalid_request",
            "cursor is not valid: pass the next_cursor value of the previous page unchanged",
            [{"location": "query.cursor", "problem": "not a cursor of this endpoint"}],
        )
    return parts


MAX_ID = 2_147_483_647
"""The largest id or version the store's INT columns hold."""


def whole_number(text: str, limit: int = 2**63 - 1) -> int | None:
    """`text` as a number from 0 to `limit` when it is written in ASCII digits, else None
    (str.isdigit also takes '²' and other digits int() refuses)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(limit)):
        return None
    number = int(text)
    return number if number <= limit else None


def number_cursor(cursor: str | None) -> int | None:
    """A cursor that holds one id this service handed out (a 422 for anything else)."""
    parts = decode_cursor(cursor, 1)
    if parts is None:
        return None
    number = whole_number(parts[0])
    if number is None:
        raise ApiError(422, "invalid_request", "cursor is not valid: pass next_cursor unchanged")
    return number


def time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    parts = decode_cursor(cursor, 2)
    if parts is None:
        return None
    try:
        at = datetime.fromisoformat(parts[0])
        at.astimezone(UTC)  # a forged extreme time overflows here, not in the store's driver
        return at, parts[1]
    except (ValueError, OverflowError):
        raise ApiError(
            422, "invalid_request", "cursor is not valid: pass next_cursor unchanged"
        ) from None
