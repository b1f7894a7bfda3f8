"""API keys: with `TAGSYS_API_KEY` (or named `TAGSYS_API_KEYS`) set, every endpoint but
`/health` and `/metrics` needs one, as `X-API-Key` or `Authorization: Bearer`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tagsys.errors import ConfigError
from tagsys.service.errors import ApiError
from tagsys.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_ACTOR_LENGTH = 100

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token")


def configured_keys(settings: Settings) -> dict[str, bytes]:
    """Key name -> key. The single `api_key` is named `default`."""
    keys = {name: key.get_secret_value().encode() for name, key in settings.api_keys.items()}
    if settings.api_key is not None:
        keys.setdefault("default", settings.api_key.get_secret_value().encode())
    return {name: key for name, key in keys.items() if key}


def match_key(keys: Mapping[str, bytes], given: str) -> str | None:
    """The name of the key `given` is, compared in constant time against every key."""
    found = None
    candidate = given.encode()
    for name, key in keys.items():
        if hmac.compare_digest(key, candidate):
            found = name
    return found


def refuse_open_bind(settings: Settings, host: str) -> None:
    """Without a key, the service only listens on the loopback interface."""
    if not configured_keys(settings) and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could "
            'start runs. Set TAGSYS_API_KEY (or TAGSYS_API_KEYS=\'{"name": "key"}\'), or '
            "listen on 127.0.0.1",
        )


def caller(
    request: Request,
    header_key: str | None = Depends(_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> str | None:
    """Who is calling: the X-Actor header, else the key's name (None when no keys are set).
    Raises 401 when keys are configured and none (or a wrong one) was given."""
    keys: Mapping[str, bytes] = request.app.state.keys
    actor = request.headers.get("X-Actor")
    if actor is not None and not 0 < len(actor) <= MAX_ACTOR_LENGTH:
        raise ApiError(
            422, "invalid_request", f"X-Actor must be 1 to {MAX_ACTOR_LENGTH} characters"
        )
    if not keys:
        return actor
    given = header_key or (bearer.credentials if bearer else None)
    if not given:
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs an API key: send it as the X-API-Key header or as "
            "'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    name = match_key(keys, given)
    if name is None:
        raise ApiError(
            401, "unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    return actor or name
