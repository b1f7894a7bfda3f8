"""AWS Glue: the job entry (`execute_glue_job`), its argument parsing, the job script that
Glue runs, the deploy tool and the Secrets Manager credentials. A thin layer over
`tagsys.api.TagSystemAPI`: nothing here computes tags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tagsys.glue.entry import execute_glue_job as execute_glue_job

__all__ = ["execute_glue_job"]


def __getattr__(name: str) -> Any:
    if name == "execute_glue_job":
        from tagsys.glue.entry import execute_glue_job

        return execute_glue_job
    raise AttributeError(name)
