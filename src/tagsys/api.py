"""The Python API (the seed's `TagSystemAPI` and convenience functions).

Everything the CLI, the HTTP service and the Glue job do goes through this class.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tagsys.engine.plan import RunRequest
from tagsys.errors import RunCancelled, StoreError, TagSysError, UsageError
from tagsys.settings import Settings, load_settings

if TYPE_CHECKING:
    import sqlalchemy as sa
    from pyspark.sql import SparkSession

    from tagsys.audiences.maintain import Publication
    from tagsys.audiences.query import AudienceCount, Audiences
    from tagsys.engine.progress import SparkProgress
    from tagsys.engine.summary import RunSummary
    from tagsys.health import HealthReport
    from tagsys.history.retention import PruneResult
    from tagsys.history.rollback import RollbackResult
    from tagsys.history.timeline import TagHistoryPage, UserHistoryPage
    from tagsys.introspect import TagExplanation
    from tagsys.lake.catalog import LakeCatalog
    from tagsys.lake.filesystem import S3Options
    from tagsys.management.manager import TagManager
    from tagsys.management.preview import Previewer, PreviewResult
    from tagsys.store.runs import RunRecord
    from tagsys.tasks.registry import TaskRegistry

log = logging.getLogger(__name__)
QUICK_LOCK_WAIT_SECONDS = 3
"""How long a query's catch-up waits for another process's audience-index maintenance."""


@dataclass(frozen=True)
class TaskInfo:
    """One row of `list-tasks`."""

    tag_id: int
    tag_name: str
    tag_category: str
    active: bool
    task_class: str
    domain: str
    source_tables: tuple[str, ...]
    rules: int
    problem: str | None = None


class TagSystemAPI:
    """Entry point to the product. Use as a context manager: Spark is stopped on exit."""

    def __init__(
        self,
        environment: str | None = None,
        log_level: str | None = None,
        *,
        settings: Settings | None = None,
        spark: SparkSession | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(environment, log_level=log_level, **overrides)
        self._spark = spark
        self._owns_spark = spark is None
        self.last_summary: RunSummary | None = None
        self._cancelled: set[str] = set()
        self._cancel_lock = threading.Lock()

    def __enter__(self) -> TagSystemAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "previewer" in self.__dict__:
            self.previewer.close()
        if "audiences" in self.__dict__:
            self.audiences.engine.dispose()
        if "store_engine" in self.__dict__:
            self.store_engine.dispose()
        if self._spark is not None and self._owns_spark:
            self._spark.stop()
            self._spark = None

    @property
    def db_url(self) -> str:
        return self.settings.database_url

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from tagsys.lake.s3a import prepare_session, spark_s3a_conf

            self._spark = self._shared_session() or self._new_session(
                {**spark_s3a_conf(self.s3_options), **self.settings.spark_conf}
            )
            prepare_session(self._spark, self.settings.lake_root, self.s3_options)
        return self._spark

    def _shared_session(self) -> SparkSession | None:
        """Inside Glue, a notebook or a test session: share the active session."""
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            self._owns_spark = False
        return active

    def _new_session(self, conf: dict[str, str]) -> SparkSession:
        from tagsys.spark import create_session

        s = self.settings
        return create_session(s.spark_master, "tagsys", conf, archive=s.spark_archive)

    @cached_property
    def s3_options(self) -> S3Options | None:
        """S3 access of the lake (S3_ENDPOINT, S3_ACCESS_KEY, ...); None: AWS's defaults."""
        from tagsys.lake.filesystem import S3Options

        s = self.settings
        if not (s.s3_endpoint or s.s3_access_key or s.aws_region):
            return None
        return S3Options(
            endpoint=s.s3_endpoint,
            access_key=s.s3_access_key.get_secret_value() if s.s3_access_key else None,
            secret_key=s.s3_secret_key.get_secret_value() if s.s3_secret_key else None,
            region=s.aws_region,
        )

    @cached_property
    def catalog(self) -> LakeCatalog:
        from tagsys.lake.catalog import LakeCatalog

        s = self.settings
        return LakeCatalog(
            s.lake_root if s.lake_uri or not s.catalog_tables else None,
            s.user_id_column,
            s3=self.s3_options,
            catalog_tables=s.catalog_tables,
            event_tables=s.event_tables,
            spark=lambda: self.spark,
        )

    @cached_property
    def registry(self) -> TaskRegistry:
        from tagsys.tasks.registry import default_registry

        default_registry.discover(self.settings.task_packages)
        return default_registry

    @cached_property
    def store_engine(self) -> sa.Engine:
        """One engine for tag management and previews (runs open their own)."""
        from tagsys.store.db import create_store_engine

        self.ensure_store()
        return create_store_engine(self.db_url)

    def tag_manager(self) -> TagManager:
        """Categories, tags, rules, versions and the audit log (`tagsys.management`)."""
        from tagsys.management.manager import TagManager

        return TagManager(self.store_engine, self.catalog.schema)

    @cached_property
    def previewer(self) -> Previewer:
        from tagsys.management.preview import Previewer
        from tagsys.store.runs import runs_generation

        engine = self.store_engine
        return Previewer(
            lambda: self.spark,
            self.catalog,
            self.db_url,
            self.run_conf(),
            store_key=lambda: runs_generation(bind=engine),
        )

    def preview_rule(
        self,
        rule: Any,
        as_of: date | None = None,
        tag_id: int | None = None,
        sample: int = 20,
        timeout: float | None = None,
    ) -> PreviewResult:
        """Who an unsaved rule would tag (and, given a tag, who it would add and remove)."""
        if tag_id is not None:
            self.tag_manager().get_tag(tag_id)  # NotFoundError for an unknown tag
        self.catalog.refresh()  # a preview sees the partitions a run started now would read
        return self.previewer.preview(
            rule,
            as_of or self.settings.today(),
            tag_id=tag_id,
            sample=sample,
            timeout=timeout or self.settings.preview_timeout_seconds,
        )

    def ensure_store(self) -> None:
        from tagsys.store.migrate import ensure_schema

        ensure_schema(self.db_url)

    # --- the seed's calls -------------------------------------------------------------
    def health(self) -> HealthReport:
        from tagsys.health import run_checks

        return run_checks(self)

    def health_check(self) -> bool:
        return self.health().ok

    def run(self, request: RunRequest, run_id: str | None = None) -> RunSummary:
        """Execute a run and return its summary. Its `tag_runs` row is written as it starts,
        kept alive by a heartbeat, and finished as completed, failed or cancelled.

        Runs may go on in several threads at once (the service's jobs); `cancel_run(run_id)`
        stops one of them."""
        from tagsys.engine.run import new_summary

        self.ensure_store()
        summary = new_summary(request, run_id)
        return self._recorded(summary, lambda on_phase: self._execute(request, summary, on_phase))

    def _recorded(
        self, summary: RunSummary, work: Callable[[Callable[[str], None]], Any]
    ) -> RunSummary:
        """Do a run's `work` with its `tag_runs` row: started, beaten, finished once; a
        `cancel_run` stops it at its next phase (or its Spark jobs at once)."""
        from tagsys.engine.recorder import RunRecorder

        recorder = RunRecorder(
            self.db_url, self.settings.run_heartbeat_seconds, journal=self.settings.journal
        )
        recorder.start(summary)

        def on_phase(name: str) -> None:
            self._raise_if_cancelled(summary.run_id)
            recorder.phase(name)

        try:
            work(on_phase)
            self._raise_if_cancelled(summary.run_id)
        except BaseException as exc:
            self._cancel_spark_jobs(summary.run_id)
            stopped = self._cancelled_error(summary.run_id, exc)
            summary.finished_at = datetime.now(UTC)
            try:
                recorder.fail(summary, stopped or exc)
            except TagSysError as record_error:
                log.error("run %s: %s", summary.run_id, record_error)
            self.last_summary = summary
            if stopped is None and isinstance(exc, Exception):  # a stopping process goes now
                self._maintain_index(summary)
            if stopped is not None:
                raise stopped from exc
            raise
        finally:
            with self._cancel_lock:
                self._cancelled.discard(summary.run_id)
        recorder.finish(summary)
        self.last_summary = summary
        self._maintain_index(summary)
        return summary

    def _maintain_index(self, summary: RunSummary) -> None:
        """Take the run's writes into the audience index. A failure here never fails the
        run: the index stays at its last generation, and `health` says it is behind."""
        from tagsys.stopping import stop_requested

        if summary.dry_run or not self.settings.audience_index or stop_requested():
            return
        from tagsys.audiences.maintain import catch_up

        started = time.perf_counter()
        try:
            publication = catch_up(self.store_engine)
        except Exception as exc:  # the run's own outcome is already recorded
            log.warning("audience index not updated after run %s: %s", summary.run_id, exc)
            return
        finally:  # shown with the run's phases (its record was finished before)
            summary.phases["index"] = round(time.perf_counter() - started, 3)
        if publication is not None:
            log.info("%s", publication.render())

    def cancel_run(self, run_id: str) -> None:
        """Stop a run of this process that is going on in another thread: its Spark jobs are
        cancelled (their writers' transactions roll back) and it ends `cancelled`."""
        with self._cancel_lock:
            self._cancelled.add(run_id)
        self._cancel_spark_jobs(run_id)

    def forget_cancel(self, run_id: str) -> None:
        """Drop a cancellation of a run that is over (one may arrive after it ended)."""
        with self._cancel_lock:
            self._cancelled.discard(run_id)

    def run_progress(self, run_id: str) -> SparkProgress | None:
        """How far the Spark work of a run going on in this process has got (None: no
        Spark job of it is known here; Spark is not started for the question)."""
        from tagsys.engine.progress import spark_progress

        if self._spark is None:
            return None
        return spark_progress(self._spark, run_id)

    def _was_cancelled(self, run_id: str) -> bool:
        with self._cancel_lock:
            return run_id in self._cancelled

    def _cancelled_error(self, run_id: str, exc: BaseException) -> RunCancelled | None:
        """The cancellation a failure really is (a cancelled Spark job surfaces as an error)."""
        if isinstance(exc, RunCancelled) or not self._was_cancelled(run_id):
            return None
        return RunCancelled(f"run {run_id} was cancelled on request")

    def _raise_if_cancelled(self, run_id: str) -> None:
        if self._was_cancelled(run_id):
            raise RunCancelled(f"run {run_id} was cancelled on request")

    def _execute(
        self, request: RunRequest, summary: RunSummary, on_phase: Callable[[str], None]
    ) -> None:
        from tagsys.engine.run import RunContext, execute
        from tagsys.spark import run_conf

        self.catalog.refresh()  # a long-lived API must see partitions written since its last run
        ctx = RunContext(
            spark=self.spark,
            catalog=self.catalog,
            db_url=self.db_url,
            registry=self.registry,
            write_batch_size=self.settings.write_batch_size,
            write_partitions=self.settings.write_partitions,
            change_columns=dict(self.settings.change_columns),
            journal=self.settings.journal,
            on_phase=on_phase,
        )
        self.spark.sparkContext.setJobGroup(
            summary.run_id, f"tagsys {request.mode}", interruptOnCancel=True
        )
        with run_conf(self.spark, self.run_conf()):
            execute(request, ctx, summary)

    def run_conf(self) -> dict[str, str]:
        """Session settings of a run (and of `explain`, so that it sees what a run sees):
        dates of timestamps (rules, change columns) are taken in the business time zone."""
        from tagsys.spark import RUN_CONF

        conf = {**RUN_CONF, "spark.sql.session.timeZone": self.settings.timezone}
        conf.update({k: v for k, v in self.settings.spark_conf.items() if k in conf})
        return conf

    def _cancel_spark_jobs(self, run_id: str) -> None:
        """Stop the Spark work a run left behind (its writers' transactions roll back)."""
        if self._spark is None:
            return
        try:
            self._spark.sparkContext.cancelJobGroup(run_id)
        except Exception as exc:  # the session may itself be what failed
            log.debug("cancelling the Spark jobs of run %s failed: %s", run_id, exc)

    def request(self, mode: str, **kwargs: Any) -> RunRequest:
        as_of = kwargs.pop("as_of", None) or self.settings.today()
        tag_ids = kwargs.pop("tag_ids", None)
        user_ids = kwargs.pop("user_ids", None)
        return RunRequest(
            mode=mode,  # type: ignore[arg-type]
            as_of=as_of,
            tag_ids=tuple(tag_ids) if tag_ids is not None else None,
            user_ids=tuple(user_ids) if user_ids is not None else None,
            **kwargs,
        )

    def run_task_all_users_all_tags(self, as_of: date | None = None, dry_run: bool = False) -> bool:
        return self._succeeded(self.request("task-all", as_of=as_of, dry_run=dry_run))

    def run_task_specific_tags(
        self, tag_ids: Sequence[int], as_of: date | None = None, dry_run: bool = False
    ) -> bool:
        request = self.request("task-tags", tag_ids=tag_ids, as_of=as_of, dry_run=dry_run)
        return self._succeeded(request)

    def run_task_specific_users_specific_tags(
        self,
        user_ids: Sequence[str],
        tag_ids: Sequence[int] | None = None,
        as_of: date | None = None,
        dry_run: bool = False,
    ) -> bool:
        request = self.request(
            "task-users", user_ids=user_ids, tag_ids=tag_ids, as_of=as_of, dry_run=dry_run
        )
        return self._succeeded(request)

    def run_incremental(
        self,
        days: int,
        tag_ids: Sequence[int] | None = None,
        as_of: date | None = None,
        dry_run: bool = False,
    ) -> bool:
        request = self.request(
            "incremental", days=days, tag_ids=tag_ids, as_of=as_of, dry_run=dry_run
        )
        return self._succeeded(request)

    def _succeeded(self, request: RunRequest) -> bool:
        """The seed's boolean contract: any failure is False (logged), never an exception."""
        try:
            return self.run(request).succeeded
        except TagSysError as exc:
            log.error("run %s failed: %s", request.mode, exc)
            return False
        except Exception:
            log.exception("run %s failed unexpectedly", request.mode)
            return False

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first (a run whose process died reads as `abandoned`)."""
        from tagsys.store.db import create_store_engine
        from tagsys.store.runs import list_runs

        self.ensure_store()
        engine = create_store_engine(self.db_url)
        try:
            return list_runs(bind=engine, limit=limit)
        finally:
            engine.dispose()

    # --- audiences (SPEC section 10) ----------------------------------------------------
    @cached_property
    def audiences(self) -> Audiences:
        """Audience counts, samples, members, exports and saved audiences (`tagsys.audiences`)."""
        from tagsys.audiences.query import Audiences
        from tagsys.store.db import create_store_engine

        self.ensure_store()
        return Audiences(create_store_engine(self.db_url), self._s3_client())

    def audience(self, expression: Any) -> AudienceCount:
        """The size of an audience expression: `{"and": [3, {"not": "new user"}]}`."""
        return self.audiences.count(expression)

    def refresh_index(self, quick: bool = False) -> Publication | None:
        """Take in finished runs the audience index does not hold yet (a run whose process
        died before its maintenance, a run of another process) before answering from it;
        None when it is current or turned off (`TAGSYS_AUDIENCE_INDEX=false`). `quick`: for a
        query, which waits at most QUICK_LOCK_WAIT_SECONDS for another process's maintenance
        and answers from the published index if the runs cannot be taken in (a warning)."""
        from tagsys.audiences.maintain import refresh
        from tagsys.store.db import create_store_engine

        if not self.settings.audience_index:
            return None
        if not quick:
            publication = refresh(self.audiences.engine)
        else:
            engine = create_store_engine(self.db_url, lock_wait_seconds=QUICK_LOCK_WAIT_SECONDS)
            try:
                publication = refresh(engine)
            except StoreError as exc:
                log.warning(
                    "answering from the published audience index, not brought up to date first: %s",
                    exc,
                )
                return None
            finally:
                engine.dispose()
        if publication is not None:
            log.info("%s", publication.render())
        return publication

    def reindex(self) -> Publication:
        """Rebuild the audience index from user_tags and publish it."""
        from tagsys.audiences.maintain import rebuild

        return rebuild(self.store_engine)

    def _s3_client(self) -> Any:
        try:
            import boto3
        except ImportError:
            return None
        options = self.s3_options
        if options is None:
            return boto3.client("s3")
        return boto3.client(
            "s3",
            endpoint_url=options.endpoint,
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            region_name=options.region,
        )

    # --- history and rollback (SPEC section 9) ------------------------------------------
    def rollback(self, run_id: str, dry_run: bool = False) -> RollbackResult:
        """Undo run `run_id`: each row it wrote gets its content from before the run back,
        except rows changed since (conflicts: left alone, counted, sampled). Recorded and
        journaled as a run of mode `rollback`; a dry run only counts."""
        from tagsys.history import rollback

        self.ensure_store()
        with self._store() as engine:
            rollback.check_target(engine, run_id, dry_run)
        summary = rollback.new_summary(run_id, dry_run, self.settings.today())

        started: list[bool] = []

        def work(on_phase: Callable[[str], None]) -> None:
            started.append(True)  # recorded: from here on it has a run id to report
            rollback.execute(
                self.db_url,
                summary,
                batch_size=self.settings.write_batch_size,
                journal_on=self.settings.journal,
                on_phase=on_phase,
            )

        try:
            self._recorded(summary, work)
        except TagSysError as exc:  # stopped midway: say what it did, and under which run
            if not started:
                raise
            stopped = rollback.RollbackResult.from_summary(summary)
            raise rollback.RollbackStopped(stopped, exc) from exc
        return rollback.RollbackResult.from_summary(summary)

    def user_history(
        self, user_id: str, cursor: str | None = None, limit: int = 50
    ) -> UserHistoryPage:
        """The user's changes, newest first: tags entered and exited, by which run, when."""
        from tagsys.history.timeline import user_history

        _check_page(limit)
        with self._store() as engine:
            return user_history(engine, user_id, cursor, limit)

    def tag_history(
        self, tag_id: int, cursor: str | None = None, limit: int = 50
    ) -> TagHistoryPage:
        """The runs, newest first, with the users who entered and exited the tag and its
        members after each."""
        from tagsys.history.timeline import tag_history

        _check_page(limit)
        with self._store() as engine:
            return tag_history(engine, tag_id, cursor, limit)

    def prune_journal(self, days: int | None = None) -> PruneResult:
        """Delete the journal of runs older than `days` (default TAGSYS_JOURNAL_DAYS)."""
        from tagsys.history.retention import prune

        with self._store() as engine:
            return prune(engine, self.settings.journal_days if days is None else days)

    @contextmanager
    def _store(self) -> Iterator[sa.Engine]:
        from tagsys.store.db import create_store_engine

        self.ensure_store()
        engine = create_store_engine(self.db_url)
        try:
            yield engine
        finally:
            engine.dispose()

    def list_tasks(self) -> list[TaskInfo]:
        from tagsys.introspect import task_infos

        return task_infos(self)

    def list_available_tasks(self) -> dict[int, str]:
        """The seed's call: tag id -> task class name, for every computable tag."""
        return {t.tag_id: t.task_class for t in self.list_tasks() if t.active}

    def validate_rules(self) -> list[tuple[int, str, Any]]:
        from tagsys.introspect import rule_problems

        return rule_problems(self)

    def explain(self, tag_id: int, user_id: str, as_of: date | None = None) -> str:
        from tagsys.introspect import explain_user

        return explain_user(self, tag_id, user_id, as_of or self.settings.today())

    def explain_tag(self, tag_id: int, user_id: str, as_of: date | None = None) -> TagExplanation:
        """`explain` as data: each rule's tree of conditions with values and results."""
        from tagsys.introspect import explain_tag

        return explain_tag(self, tag_id, user_id, as_of or self.settings.today())


def _check_page(limit: int) -> None:
    from tagsys.history.timeline import MAX_PAGE

    if not 1 <= limit <= MAX_PAGE:
        raise UsageError(f"a history page holds 1 to {MAX_PAGE} items, not {limit}")


def run_health_check(environment: str = "local") -> bool:
    with TagSystemAPI(environment) as api:
        return api.health_check()


def run_all_tasks(environment: str = "local") -> bool:
    with TagSystemAPI(environment) as api:
        return api.run_task_all_users_all_tags()


def run_specific_tags(tag_ids: Sequence[int], environment: str = "local") -> bool:
    with TagSystemAPI(environment) as api:
        return api.run_task_specific_tags(tag_ids)


def run_specific_users_tags(
    user_ids: Sequence[str], tag_ids: Sequence[int], environment: str = "local"
) -> bool:
    with TagSystemAPI(environment) as api:
        return api.run_task_specific_users_specific_tags(user_ids, tag_ids)


def get_available_tasks(environment: str = "local") -> dict[int, str]:
    with TagSystemAPI(environment) as api:
        return api.list_available_tasks()
