"""`tagsys serve`: uvicorn in this process, one SparkSession for every job."""

from __future__ import annotations

import logging

from tagsys.service.security import refuse_open_bind
from tagsys.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000


def serve(settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve until SIGTERM/Ctrl-C. Running jobs are then cancelled (recorded as such)."""
    import uvicorn

    from tagsys.service.app import create_app
    from tagsys.service.context import open_context
    from tagsys.service.observability import configure_logging

    refuse_open_bind(settings, host)
    configure_logging(settings.log_level, settings.log_format)
    ctx = open_context(settings)
    log.info("serving on http://%s:%d (store %s)", host, port, settings.safe_database_url)
    config = uvicorn.Config(
        create_app(ctx), host=host, port=port, log_config=None, access_log=False
    )
    uvicorn.Server(config).run()
