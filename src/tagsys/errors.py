"""One exception tree. Every message names the thing at fault and what to do about it."""

from __future__ import annotations


class TagSysError(Exception):
    """Root of every error the product raises on purpose."""

    exit_code = 1


class ConfigError(TagSysError):
    """Settings are missing, malformed or contradictory."""


class JavaMissingError(ConfigError):
    """No Java runtime was found for Spark."""


class StoreError(TagSysError):
    """The relational store is unreachable, unmigrated or refused a statement."""


class LakeError(TagSysError):
    """The data lake is missing, unreadable or has an unexpected layout."""


class FieldError(LakeError):
    """A rule field does not name exactly one column of the lake."""


class DataError(LakeError):
    """The lake's data breaks an invariant (e.g. a user id twice in one table)."""


class RuleError(TagSysError):
    """A rule cannot be parsed or validated; its tag fails closed."""


class TaskError(TagSysError):
    """A tag task is misdefined or failed."""


class RunError(TagSysError):
    """A run could not complete, or finished with failed tags."""


class SparkFailure(RunError):
    """Spark (the JVM) failed while running a run's work, for a reason of its own."""


class UsageError(TagSysError):
    """The command line or API call was used wrongly (e.g. an unknown tag id)."""


class RunCancelled(KeyboardInterrupt):
    """A run was stopped on request (SIGTERM, a cancelled job). Like Ctrl-C it is not an
    `Exception`, so no library's `except Exception` swallows it on its way out of a Spark call."""

    exit_code = 143


class NotFoundError(UsageError):
    """A tag, category or version that does not exist (or was deleted)."""


class ConflictError(UsageError):
    """A change that conflicts with the stored state: a duplicate name, or an edit based on a
    version that is no longer the current one (optimistic locking)."""

    def __init__(self, message: str, *, code: str = "conflict", details: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class QueueFullError(UsageError):
    """The job queue holds as many waiting jobs as it may: nothing was queued."""

    def __init__(self, waiting: int, limit: int) -> None:
        super().__init__(f"{waiting} jobs are waiting (limit {limit}): retry later")
        self.waiting = waiting
        self.limit = limit


class DefinitionError(RuleError):
    """A tag definition (its fields or rules) is invalid: carries every problem as
    `(location, problem)` pairs, the location being a path in the document sent."""

    def __init__(self, message: str, problems: list[tuple[str, str]]) -> None:
        lines = [message, *(f"  - {where}: {what}" for where, what in problems)]
        super().__init__("\n".join(lines))
        self.summary = message
        self.problems = problems


class AudienceError(UsageError):
    """An audience expression is invalid: every problem as `(location, problem)`, the location
    a path in the expression sent (`$.and[1].not`)."""

    def __init__(self, message: str, problems: list[tuple[str, str]]) -> None:
        lines = [message, *(f"  - {where}: {what}" for where, what in problems)]
        super().__init__("\n".join(lines))
        self.summary = message
        self.problems = problems


class PreviewTimeout(TagSysError):
    """A preview ran longer than its time limit; its Spark jobs were cancelled."""
