"""One typed settings object. Precedence: CLI flags > environment variables > the
environment's config file (`config/<env>.toml`) > defaults. Environments are data."""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tagsys.errors import ConfigError

log = logging.getLogger(__name__)
ENVIRONMENTS = ("local", "glue-dev", "glue-prod")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("_FILE_VALUES", default=None)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything a run needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="TAGSYS_", extra="forbid", populate_by_name=True)

    env: str = Field("local", validation_alias=_alias("env", "TAGSYS_ENV", "TAG_SYSTEM_ENV"))
    data_dir: Path = Path("data")
    db_url: SecretStr | None = None
    lake_uri: str | None = None
    user_id_column: str = "user_id"
    catalog_tables: dict[str, str] = Field(default_factory=dict)
    change_columns: dict[str, str] = Field(default_factory=dict)
    event_tables: list[str] = Field(default_factory=list)
    task_packages: list[str] = Field(default_factory=list)
    spark_master: str = Field(
        "local[*]",
        validation_alias=_alias("spark_master", "TAGSYS_SPARK_MASTER", "SPARK_MASTER_URL"),
    )
    spark_conf: dict[str, str] = Field(default_factory=dict)
    spark_archive: str | None = None
    """The executors' Python environment made by `tagsys pack` (non-local masters)."""
    api_key: SecretStr | None = None
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Named API keys (JSON object name -> key): the name is recorded as who asked."""
    log_format: str = Field("text", pattern="^(text|json)$")
    job_workers: int = Field(3, ge=1, le=64)
    job_queue_limit: int = Field(100, ge=1, le=100_000)
    job_heartbeat_seconds: float = Field(5.0, gt=0, le=3600)
    timezone: str = "UTC"
    log_level: str = Field(
        "INFO", validation_alias=_alias("log_level", "TAGSYS_LOG_LEVEL", "LOG_LEVEL")
    )
    write_batch_size: int = Field(2000, ge=1, le=100_000)
    write_partitions: int | None = Field(None, ge=1)
    run_heartbeat_seconds: float = Field(10.0, gt=0, le=3600)
    journal: bool = True
    """Journal every user_tags row a run writes (history and rollback need it)."""
    journal_days: int = Field(30, ge=1, le=36_500)
    """How long `prune-journal` keeps a run's journal."""
    export_dir: Path | None = None
    """Where the service writes local audience exports (default: <data_dir>/exports)."""
    audience_index: bool = True
    """Keep the audience index in step after every run (off: `--mode reindex` on demand)."""
    preview_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    aws_region: str | None = Field(None, validation_alias=_alias("aws_region", "AWS_REGION"))
    glue_job_name: str | None = None
    require_confirmation: bool = False
    # AWS Glue (glue-dev, glue-prod): see tagsys.glue and the README's Glue section.
    scripts_bucket: str | None = None
    glue_role_arn: str | None = None
    db_secret_id: str | None = None
    glue_version: str = "6.0"
    glue_worker_type: str = "G.1X"
    glue_workers: int = Field(2, ge=2, le=299)
    glue_timeout_minutes: int = Field(120, ge=1, le=10_080)
    glue_max_retries: int = Field(0, ge=0, le=10)
    glue_connection: str | None = None

    mysql_host: str | None = Field(None, validation_alias=_alias("mysql_host", "MYSQL_HOST"))
    mysql_port: int = Field(3306, validation_alias=_alias("mysql_port", "MYSQL_PORT"))
    mysql_user: str = Field("root", validation_alias=_alias("mysql_user", "MYSQL_USER"))
    mysql_password: SecretStr | None = Field(
        None, validation_alias=_alias("mysql_password", "MYSQL_PASSWORD")
    )
    mysql_database: str = Field(
        "tag_system", validation_alias=_alias("mysql_database", "MYSQL_DATABASE")
    )
    s3_endpoint: str | None = Field(None, validation_alias=_alias("s3_endpoint", "S3_ENDPOINT"))
    s3_access_key: SecretStr | None = Field(
        None, validation_alias=_alias("s3_access_key", "S3_ACCESS_KEY")
    )
    s3_secret_key: SecretStr | None = Field(
        None, validation_alias=_alias("s3_secret_key", "S3_SECRET_KEY")
    )
    _secret_db_url: str | None = PrivateAttr(None)

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        if value not in ENVIRONMENTS:
            raise ValueError(f"unknown environment '{value}'; use one of {', '.join(ENVIRONMENTS)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level '{value}'; use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name such as Asia/Shanghai)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _no_silent_embedded_store(self) -> Settings:
        """The embedded SQLite file is for `local` with a local Spark only."""
        if self.db_url is not None:
            if not self.db_url.get_secret_value().startswith("sqlite"):
                return self
        elif self.mysql_host or self.db_secret_id:
            return self
        if self.env != "local":
            raise ValueError(
                f"environment '{self.env}' has no store configured and would fall back to the "
                "embedded SQLite file: set TAGSYS_DB_URL (mysql+pymysql://USER:PASSWORD@HOST:PORT/"
                "DATABASE), the MYSQL_HOST, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DATABASE variables "
                f"(or the seed's {SEED_PREFIXES.get(self.env, '')}MYSQL_* ones), or "
                "TAGSYS_DB_SECRET_ID (an AWS Secrets Manager secret with the RDS credentials)"
            )
        if not self.spark_master.startswith("local"):
            raise ValueError(
                f"spark_master '{self.spark_master}' runs executors on other machines, each of "
                "which would write its own copy of the SQLite file: use a MySQL store "
                "(TAGSYS_DB_URL or MYSQL_*) or a local master (TAGSYS_SPARK_MASTER=local[*])"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _ProductEnvSource(settings_cls),
            _SeedVariablesSource(settings_cls),
            _EnvFileSource(settings_cls),
        )

    @property
    def database_url(self) -> str:
        """The store's SQLAlchemy URL: TAGSYS_DB_URL, else the Secrets Manager secret
        `db_secret_id` (read once, on first use), else the seed's MYSQL_*, else SQLite."""
        if self.db_url is not None:
            return _absolute_sqlite(self.db_url.get_secret_value())
        if self.db_secret_id:
            if self._secret_db_url is None:
                from tagsys.glue.aws_secrets import store_url_from_secret

                self._secret_db_url = store_url_from_secret(self)
            return self._secret_db_url
        if self.mysql_host:
            from sqlalchemy import URL

            return URL.create(
                "mysql+pymysql",
                username=self.mysql_user,
                password=self.mysql_password.get_secret_value() if self.mysql_password else None,
                host=self.mysql_host,
                port=self.mysql_port,
                database=self.mysql_database,
                query={"charset": "utf8mb4"},
            ).render_as_string(hide_password=False)
        return f"sqlite:///{(self.data_dir / 'tagsys.db').resolve()}"

    @property
    def safe_database_url(self) -> str:
        """The store URL with its password masked, for logs and reports."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def export_root(self) -> Path:
        return (self.export_dir or self.data_dir / "exports").resolve()

    @property
    def lake_root(self) -> str:
        """The lake root; a local path is made absolute (Spark's workers run elsewhere)."""
        if self.lake_uri and "://" in self.lake_uri:
            return self.lake_uri
        return str(Path(self.lake_uri or self.data_dir / "lake").resolve())

    def today(self) -> date:
        """The default as_of: today in the configured time zone."""
        return datetime.now(ZoneInfo(self.timezone)).date()


def _absolute_sqlite(url: str) -> str:
    """A relative SQLite path is resolved now: Spark's Python workers have another cwd."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database == ":memory:" or Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(
        hide_password=False
    )


SEED_PREFIXES = {"glue-dev": "DEV_", "glue-prod": "PROD_"}
"""The seed's variables of the Glue environments (`DEV_MYSQL_HOST`, `PROD_S3_BUCKET`, ...)."""
SEED_VARIABLES = {
    "S3_BUCKET": "scripts_bucket",
    "GLUE_ROLE_ARN": "glue_role_arn",
    "MYSQL_HOST": "mysql_host",
    "MYSQL_PORT": "mysql_port",
    "MYSQL_DATABASE": "mysql_database",
    "MYSQL_USERNAME": "mysql_user",
    "MYSQL_PASSWORD": "mysql_password",
    "DB_SECRET_ID": "db_secret_id",
    "GLUE_CONNECTION": "glue_connection",
}
SEED_ENV_FILES = {"glue-dev": ".env.dev", "glue-prod": ".env.prod"}
_SEED_ENV: ContextVar[str | None] = ContextVar("_SEED_ENV", default=None)


def seed_env_file(env: str) -> Path | None:
    """The environment's `.env.dev` / `.env.prod`: TAGSYS_ENV_FILE, else the first one found
    in the working directory or its parents (the seed runs `deploy.py` from a subfolder)."""
    explicit = os.environ.get("TAGSYS_ENV_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"TAGSYS_ENV_FILE={explicit} is not a file; fix or unset it")
        return path
    name = SEED_ENV_FILES.get(env)
    if name is None:
        return None
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / name).is_file():
            return folder / name
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines (optionally `export KEY=VALUE`, quoted values, # comments)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number} is not a KEY=VALUE line; fix or remove it")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def seed_values(env: str) -> dict[str, Any]:
    """Settings from the seed's prefixed variables: the process environment first, then the
    environment's `.env` file. `<P>DATA_S3_BUCKET` sets the lake to `s3://BUCKET/hive`."""
    prefix = SEED_PREFIXES.get(env)
    if prefix is None:
        return {}
    env_file = seed_env_file(env)
    variables = {**(read_env_file(env_file) if env_file else {}), **os.environ}
    values: dict[str, Any] = {}
    for suffix, field in SEED_VARIABLES.items():
        if variables.get(prefix + suffix):
            values[field] = variables[prefix + suffix]
    if variables.get(prefix + "DATA_S3_BUCKET"):
        values["lake_uri"] = f"s3://{variables[prefix + 'DATA_S3_BUCKET']}/hive"
    for name in ("AWS_REGION", "TAGSYS_DB_SECRET_ID"):
        if env_file and name not in os.environ and variables.get(name):
            values[name.removeprefix("TAGSYS_").lower()] = variables[name]
    return values


class _ProductEnvSource(EnvSettingsSource):
    """Environment variables under their listed names, in the listed order. An aliased field's
    bare name is another program's variable (Spark's scripts export SPARK_MASTER), never ours."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env_vars = dict(super()._load_env_vars())
        for name, field in self.settings_cls.model_fields.items():
            if not isinstance(field.validation_alias, AliasChoices):
                continue
            choices = field.validation_alias.choices
            listed = [c.lower() for c in choices if isinstance(c, str) and c != name]
            value = next((env_vars[c] for c in listed if c in env_vars), None)
            env_vars.pop(name, None)
            if value is not None:
                env_vars[name] = value
        return env_vars


class _SeedVariablesSource(PydanticBaseSettingsSource):
    """The seed's `DEV_*` / `PROD_*` variables and `.env.dev` / `.env.prod` (below TAGSYS_*)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = _SEED_ENV.get()
        return seed_values(env) if env else {}


class _EnvFileSource(PydanticBaseSettingsSource):
    """Values of the environment's config file, set by `load_settings` for this build."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_VALUES.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get() or {})


def env_file_values(env: str, config_file: Path | None = None) -> dict[str, Any]:
    """Read `config/<env>.toml` shipped with the package, or an explicit file."""
    if config_file is not None:
        text = Path(config_file).read_text(encoding="utf-8")
    else:
        resource = resources.files("tagsys.config").joinpath(f"{env}.toml")
        if not resource.is_file():
            raise ConfigError(f"unknown environment '{env}'; use one of {', '.join(ENVIRONMENTS)}")
        text = resource.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file for environment '{env}' is not valid TOML: {exc}") from exc


def load_settings(
    env: str | None = None, *, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build the settings for `env` with `overrides` (CLI flags) taking precedence."""
    env = env or os.environ.get("TAGSYS_ENV") or os.environ.get("TAG_SYSTEM_ENV") or "local"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment '{env}'; use one of {', '.join(ENVIRONMENTS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    for name, meant in misspelled_variables(os.environ):
        log.warning("%s is set but is not a setting (ignored): did you mean %s?", name, meant)
    token = _FILE_VALUES.set(env_file_values(env, config_file))
    seed_token = _SEED_ENV.set(env)
    try:
        return Settings(env=env, **given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _SEED_ENV.reset(seed_token)
        _FILE_VALUES.reset(token)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "invalid settings: " + "; ".join(problems)


def misspelled_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(variable, the setting it looks like) for each TAGSYS_* variable that is no setting
    but nearly spells one: a typo would otherwise be ignored without a word. Variables that
    resemble no setting (other tools' own) are left alone."""
    known = _setting_variables()
    found = []
    for name in sorted(environ):
        if name.startswith("TAGSYS_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            if close:
                found.append((name, close[0]))
    return found


def _setting_variables() -> list[str]:
    names = {"TAGSYS_ENV_FILE"}
    for field_name, info in Settings.model_fields.items():
        names.add(f"TAGSYS_{field_name.upper()}")
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names.update(c for c in choices if isinstance(c, str) and c.startswith("TAGSYS_"))
    return sorted(names)
