"""The REST service (`tagsys serve`): the seed's asynchronous tag jobs over HTTP.

Thin over the engine: routes (`routes/`) validate and translate, jobs (`jobs.py`) claim
`tag_jobs` rows and run them through `TagSystemAPI.run` on the process's one SparkSession,
schedules (`scheduler.py`) turn cron expressions into jobs.
"""
