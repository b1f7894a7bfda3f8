"""How far a run's Spark work has got, from Spark's status tracker (in this process only):
the tasks of the Spark jobs of the run's job group that are going on now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class SparkProgress:
    jobs_running: int
    jobs_done: int
    tasks: int
    """Tasks of the stages of the running jobs."""
    tasks_done: int

    @property
    def percent(self) -> float | None:
        """Share of the running jobs' tasks done; None when no job is running."""
        if not self.jobs_running or not self.tasks:
            return None
        return round(100.0 * self.tasks_done / self.tasks, 1)

    def view(self) -> dict[str, Any]:
        return {
            "jobs_running": self.jobs_running,
            "jobs_done": self.jobs_done,
            "tasks": self.tasks,
            "tasks_done": self.tasks_done,
            "percent": self.percent,
        }


def spark_progress(spark: SparkSession, group: str) -> SparkProgress | None:
    """The group's Spark jobs as the tracker knows them; None when it knows none."""
    tracker = spark.sparkContext.statusTracker()
    jobs = [tracker.getJobInfo(job_id) for job_id in tracker.getJobIdsForGroup(group)]
    known = [job for job in jobs if job is not None]
    if not known:
        return None
    running = [job for job in known if str(job.status) == "RUNNING"]
    tasks = done = 0
    for job in running:
        for stage_id in job.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                tasks += stage.numTasks
                done += stage.numCompletedTasks
    finished = sum(str(job.status) == "SUCCEEDED" for job in known)
    return SparkProgress(len(running), finished, tasks, done)
