"""structlog over stdlib logging, so Synapse, mautrix, nio and aiohttp share one format.

Readable lines on a terminal, JSON lines otherwise. Log key/value pairs:
`log.info("campaign.sent", campaign=cid, rooms=n)`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from mautrix.util.logging import TraceLogger

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    # stdlib records with %-style arguments (Synapse, mautrix) are formatted here.
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.stdlib.ExtraAdder(),
]


def _wants_json(fmt: str, stream: Any = None) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def stdlib_formatter(fmt: str = "auto") -> logging.Formatter:
    """A stdlib Formatter rendering through structlog (also used by Synapse's log.yaml)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if _wants_json(fmt)
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def setup_logging(level: str = "INFO", fmt: str = "auto", component: str = "") -> None:
    """Configure the root logger and structlog for one Mercato process."""
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS[:-2],
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # structlog's factory just made its own class the default for new loggers; mautrix
    # needs its TraceLogger for every logger it is given or derives (its database logs
    # with .trace()), whichever of the two was imported first.
    logging.setLoggerClass(TraceLogger)
    if component:
        structlog.contextvars.bind_contextvars(component=component)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines drown everything else; keep them at DEBUG.
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.WARNING
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)

