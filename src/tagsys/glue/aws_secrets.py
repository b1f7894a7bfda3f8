"""Store credentials from AWS Secrets Manager: a secret in the standard RDS form
(`{"username", "password", "host", "port", "dbname", "engine"}`; an RDS-managed master secret
has only `username` and `password`, the rest then comes from MYSQL_* settings).
The secret's value is never logged, printed or put into job arguments."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tagsys.errors import ConfigError

if TYPE_CHECKING:
    from tagsys.settings import Settings


def boto3_client(service: str, region: str | None) -> Any:
    """A boto3 client; a clear error when the `aws` extra is not installed."""
    try:
        import boto3
    except ImportError as exc:
        raise ConfigError(
            f"AWS {service} needs boto3, which is not installed: pip install 'tagsys[aws]'"
        ) from exc
    return boto3.client(service, region_name=region)


_WIRE_LOGGERS = ("botocore", "botocore.endpoint", "botocore.parsers", "boto3", "urllib3")


@contextmanager
def quiet_aws_logs() -> Iterator[None]:
    """At DEBUG, botocore logs request and response bodies, a secret's value among them:
    while a secret crosses the wire those loggers say nothing below WARNING."""
    loggers = [logging.getLogger(name) for name in _WIRE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def read_secret(secret_id: str, region: str | None, client: Any = None) -> dict[str, Any]:
    """The secret's JSON object. Errors name the secret and what to check, never its value."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or boto3_client("secretsmanager", region)
    try:
        with quiet_aws_logs():
            response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ConfigError(
            f"cannot read the store credentials from AWS Secrets Manager secret '{secret_id}' "
            f"(region {region or 'default'}): {code or exc}. Check TAGSYS_DB_SECRET_ID "
            "(or <DEV|PROD>_DB_SECRET_ID), AWS_REGION, and that the role may call "
            "secretsmanager:GetSecretValue on it"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(
            f"cannot reach AWS Secrets Manager for secret '{secret_id}': {type(exc).__name__}. "
            "Check AWS_REGION and the AWS credentials"
        ) from None
    text = response.get("SecretString")
    try:
        value = json.loads(text) if text else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"AWS Secrets Manager secret '{secret_id}' is not a JSON object; store the RDS form "
            '{"username": ..., "password": ..., "host": ..., "port": 3306, "dbname": ...}'
        )
    return value


def store_url_from_secret(settings: Settings, client: Any = None) -> str:
    """The store's SQLAlchemy URL from the secret `settings.db_secret_id`."""
    from sqlalchemy import URL

    secret_id = settings.db_secret_id
    if not secret_id:
        raise ConfigError("no store secret configured: set TAGSYS_DB_SECRET_ID")
    value = read_secret(secret_id, settings.aws_region, client)
    missing = [k for k in ("username", "password") if not value.get(k)]
    host = value.get("host") or settings.mysql_host
    if not host:
        missing.append("host (or set MYSQL_HOST / <DEV|PROD>_MYSQL_HOST)")
    if missing:
        raise ConfigError(
            f"AWS Secrets Manager secret '{secret_id}' lacks {', '.join(missing)}; "
            "store the RDS form {username, password, host, port, dbname}"
        )
    try:
        port = int(value.get("port") or settings.mysql_port)
    except (TypeError, ValueError):
        raise ConfigError(
            f"AWS Secrets Manager secret '{secret_id}': port is not a number"
        ) from None
    return URL.create(
        "mysql+pymysql",
        username=str(value["username"]),
        password=str(value["password"]),
        host=str(host),
        port=port,
        database=str(value.get("dbname") or settings.mysql_database),
        query={"charset": "utf8mb4"},
    ).render_as_string(hide_password=False)


def rds_secret_value(settings: Settings) -> str:
    """The RDS-form JSON of the configured MYSQL_* credentials (what deploy stores)."""
    password = settings.mysql_password.get_secret_value() if settings.mysql_password else ""
    return json.dumps(
        {
            "engine": "mysql",
            "host": settings.mysql_host,
            "port": settings.mysql_port,
            "dbname": settings.mysql_database,
            "username": settings.mysql_user,
            "password": password,
        }
    )
