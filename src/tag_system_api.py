"""The seed's module name: `from tag_system_api import TagSystemAPI` keeps working."""

from tagsys.api import (
    TagSystemAPI,
    get_available_tasks,
    run_all_tasks,
    run_health_check,
    run_specific_tags,
    run_specific_users_tags,
)

__all__ = [
    "TagSystemAPI",
    "get_available_tasks",
    "run_all_tasks",
    "run_health_check",
    "run_specific_tags",
    "run_specific_users_tags",
]
