"""Tag tasks: the base class, the registry, the generic rule task and the domain tasks."""

from tagsys.tasks.base import BaseTagTask, TagDefinitionView
from tagsys.tasks.registry import TagTaskFactory, TaskRegistry, default_registry

__all__ = ["BaseTagTask", "TagDefinitionView", "TagTaskFactory", "TaskRegistry", "default_registry"]
