"""Registry of task classes, filled by class definition (see BaseTagTask.__init_subclass__).

`discover()` imports every module of the built-in domain packages and of the configured
`task_packages`, so a new task file is picked up with no second place to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tagsys.errors import TaskError

if TYPE_CHECKING:
    from tagsys.tasks.base import BaseTagTask

BUILTIN_PACKAGES = ("tagsys.tasks",)


class TaskRegistry:
    """Maps tag ids to task classes."""

    def __init__(self) -> None:
        self._classes: dict[int, type[BaseTagTask]] = {}

    def register(self, cls: type[BaseTagTask]) -> type[BaseTagTask]:
        tag_id = cls.tag_id
        if tag_id is None:
            raise TaskError(f"task class {cls.__qualname__} has no tag_id")
        existing = self._classes.get(tag_id)
        if existing is not None and _name(existing) != _name(cls):
            raise TaskError(
                f"tag {tag_id} has two task classes: {_name(existing)} and {_name(cls)}; "
                "keep one (a tag is computed by exactly one task)"
            )
        self._classes[tag_id] = cls
        return cls

    def unregister(self, tag_id: int) -> None:
        self._classes.pop(tag_id, None)

    def get(self, tag_id: int, tag_name: str | None = None) -> type[BaseTagTask]:
        """The task class of a tag; the generic rule task when none is registered, or when
        the class expects another tag name (its id is used differently in this store)."""
        from tagsys.tasks.rule_task import RuleTagTask

        cls = self._classes.get(tag_id)
        if cls is None or (tag_name and cls.expected_name and cls.expected_name != tag_name):
            return RuleTagTask
        return cls

    def registered(self) -> dict[int, type[BaseTagTask]]:
        return dict(sorted(self._classes.items()))

    def discover(self, packages: Iterable[str] = ()) -> None:
        for package in (*BUILTIN_PACKAGES, *packages):
            _import_all(package)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_all(package_name: str) -> None:
    try:
        package = importlib.import_module(package_name)
    except ImportError as exc:
        raise TaskError(f"task package '{package_name}' cannot be imported: {exc}") from exc
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        importlib.import_module(info.name)


default_registry = TaskRegistry()


class TagTaskFactory:
    """The seed's name for the registry."""

    @staticmethod
    def register_task(tag_id: int, task_class: type[BaseTagTask]) -> None:
        if task_class.tag_id != tag_id:
            raise TaskError(
                f"{_name(task_class)} declares tag_id {task_class.tag_id}, not {tag_id}"
            )
        default_registry.register(task_class)

    @staticmethod
    def get_all_available_tasks() -> dict[int, type[BaseTagTask]]:
        default_registry.discover()
        return default_registry.registered()
