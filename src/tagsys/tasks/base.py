"""The seed's task API. A task class describes one tag; the rule itself lives in the store.

A subclass with a `tag_id` registers itself on definition: adding a file is enough.
Tasks that keep the DataFrame hooks (`preprocess_data`, `post_process_result`) as they are
run inside the engine's single pass; tasks that override them run as their own Spark job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from tagsys.lake.schema import LakeSchema
    from tagsys.rules.compiler import RuleSource


@dataclass(frozen=True)
class TagDefinitionView:
    """What a task knows of its tag definition and active rules (read from the store)."""

    tag_id: int
    tag_name: str
    tag_category: str
    rules: tuple[RuleSource, ...] = field(default_factory=tuple)
    is_active: bool = True
    version: int = 0
    """The version of the definition and rules (`tag_versions`; 0: never managed)."""


class BaseTagTask:
    """Base of every tag task. Override the class attributes and, if needed, the hooks."""

    tag_id: ClassVar[int | None] = None
    expected_name: ClassVar[str | None] = None
    domain: ClassVar[str] = "generic"
    required_fields: ClassVar[tuple[str, ...]] = ()
    data_sources: ClassVar[dict[str, str | None]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("tag_id") is not None:
            from tagsys.tasks.registry import default_registry

            default_registry.register(cls)

    def __init__(self, definition: TagDefinitionView, schema: LakeSchema | None = None) -> None:
        self.definition = definition
        self.schema = schema
        self.logger = logging.getLogger(f"tagsys.task.{type(self).__name__}")

    @property
    def tag_name(self) -> str:
        return self.definition.tag_name

    @property
    def tag_category(self) -> str:
        return self.definition.tag_category

    def get_required_fields(self) -> list[str]:
        """Fields the task needs beyond its rule's fields (`user_id` first)."""
        fields = ["user_id", *self.required_fields]
        return list(dict.fromkeys(fields))

    def get_data_sources(self) -> dict[str, str | None]:
        """Lake tables the task reads: `{'primary': table, 'secondary': table or None}`."""
        return dict(self.data_sources)

    def validate_data(self, data: DataFrame) -> bool:
        """True when `data` has every required field."""
        missing = [f for f in self.get_required_fields() if f not in data.columns]
        if missing:
            self.logger.error("tag %s: missing fields %s", self.definition.tag_id, missing)
            return False
        return True

    def preprocess_data(self, raw_data: DataFrame) -> DataFrame:
        """Prepare the task's input (columns by their lake names, one row per user)."""
        return raw_data

    def post_process_result(self, tagged_users: DataFrame) -> DataFrame:
        """Adjust the matched users (a frame with `user_id`)."""
        return tagged_users

    @classmethod
    def runs_in_one_pass(cls) -> bool:
        """True when the task's DataFrame hooks are the base ones (rule-expressible)."""
        return (
            cls.preprocess_data is BaseTagTask.preprocess_data
            and cls.post_process_result is BaseTagTask.post_process_result
        )
