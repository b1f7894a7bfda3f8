"""The seed's module name: `from glue_entry import execute_glue_job` keeps working."""

from tagsys.glue.entry import GlueJobResult, execute_glue_job

__all__ = ["GlueJobResult", "execute_glue_job"]
