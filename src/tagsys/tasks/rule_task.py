"""The generic task: used for every tag that has no task class of its own."""

from __future__ import annotations

from tagsys.tasks.base import BaseTagTask


class RuleTagTask(BaseTagTask):
    """Evaluates the tag's active rules from the store; needs no code per tag."""

    domain = "rules"
