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
