"""One JSON error shape for every 4xx and 5xx: `{"success": false, "error": {code, message,
details}}`. Product errors map to statuses here; nothing else leaks a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tagsys.errors import (
    AudienceError,
    ConfigError,
    ConflictError,
    DefinitionError,
    LakeError,
    NotFoundError,
    PreviewTimeout,
    QueueFullError,
    RuleError,
    StoreError,
    TagSysError,
    UsageError,
)

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30
"""What a 429 (the job queue is full) asks a client to wait."""


class ApiError(Exception):
    """An error answered with `status` and a code a client can branch on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


def _response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_OF: tuple[tuple[type[TagSysError], int, str], ...] = (
    (QueueFullError, 429, "queue_full"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (DefinitionError, 422, "invalid_definition"),
    (AudienceError, 422, "invalid_audience"),
    (PreviewTimeout, 504, "preview_timeout"),
    (UsageError, 422, "invalid_request"),
    (RuleError, 422, "invalid_rule"),
    (LakeError, 503, "lake_unavailable"),
    (StoreError, 503, "store_unavailable"),
    (ConfigError, 500, "misconfigured"),
)


def product_error(exc: TagSysError) -> ApiError:
    for kind, status, code in _STATUS_OF:
        if isinstance(exc, kind):
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 429 else None
            return ApiError(status, *_described(exc, code), headers=retry)
    return ApiError(500, "internal_error", str(exc))


def _described(exc: TagSysError, code: str) -> tuple[str, str, Any]:
    """(code, message, details): rule problems and conflicts carry their particulars."""
    if isinstance(exc, DefinitionError | AudienceError):
        details = [{"location": where, "problem": what} for where, what in exc.problems]
        return code, exc.summary, details
    if isinstance(exc, ConflictError):
        return exc.code, str(exc), exc.details
    return code, str(exc), None


def _location(error: dict[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "request"


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "location": _location(e),
            "problem": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in errors
    ]


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the resource at this path serves (Starlette names only the first route's).
    A literal path (`/audiences/count`) is its own resource, not a value of a parameter route
    (`/audiences/{name}`) that also matches it."""
    found: dict[bool, set[str]] = {True: set(), False: set()}
    for route in _flat_routes(app.router.routes):
        for method in getattr(route, "methods", None) or ():
            if route.matches({**request.scope, "method": method})[0] == Match.FULL:
                found["{" not in getattr(route, "path", "{")].add(method)
    return sorted(found[True] or found[False])


def _flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes, with those of included routers (FastAPI 0.165 keeps an included router as
    one entry holding the original; older versions copied its routes in)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat_routes(inner.routes)
        else:
            yield route


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        broken = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if broken:
            return _response(400, "invalid_json", _json_problem(broken[0]))
        details = validation_details(list(exc.errors()))
        summary = "; ".join(f"{d['location']}: {d['problem']}" for d in details[:5])
        return _response(422, "invalid_request", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 400 and "parsing the body" in message:
            code, message = "invalid_json", "the request body is not valid JSON"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no endpoint at {request.url.path}; see /docs for the endpoints"
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request)
            headers = {"Allow": ", ".join(allowed)}
            message = (
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
            )
        return _response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(TagSysError)
    async def _product(request: Request, exc: TagSysError) -> JSONResponse:
        error = product_error(exc)
        return _response(error.status, error.code, error.message, error.details, error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return _response(
            500,
            "internal_error",
            f"unexpected error ({type(exc).__name__}); the service log has the details "
            "under this response's request id",
        )


def _json_problem(error: Mapping[str, Any]) -> str:
    """FastAPI's JSON decode error: the decoder's reason at a character offset."""
    reason = str((error.get("ctx") or {}).get("error") or "it cannot be parsed")
    where = error.get("loc", ())[-1:]
    at = f" at character {where[0]}" if where and isinstance(where[0], int) else ""
    return f"the request body is not valid JSON: {reason}{at}"
