"""Structured JSON logs with request ids, scrubbed of API keys and credentials.

One JSON object per line: ts, level, logger, message, request_id (when inside a request) and any
`extra={...}` fields. Secrets are removed twice: known credential fields are dropped by name, and
anything shaped like an API key is masked in every string, so a key pasted into a query string or
an error message never reaches the log.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

from .keys import KEY_LIKE

request_id_var: ContextVar[str | None] = ContextVar("metamedia_request_id", default=None)

SECRET_FIELDS = frozenset({"authorization", "x-api-key", "api_key", "password", "secret", "token", "cookie"})
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """Mask API keys and bearer credentials inside free text."""
    return _BEARER.sub(r"\1[redacted]", KEY_LIKE.sub("mm_[redacted]", text))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: ("[redacted]" if str(k).lower() in SECRET_FIELDS else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON, secrets removed."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = "[redacted]" if key.lower() in SECRET_FIELDS else _clean(value)
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """For non-JSON handlers (uvicorn's access log): mask keys in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_listener: logging.handlers.QueueListener | None = None


def configure_json_logging(level: str = "info") -> None:
    """Send metamedia's and uvicorn's logs to stderr as JSON lines (idempotent).

    Records are formatted where they are logged (so the request id is known) and written by a
    background thread through a queue: the event loop never waits on the log file or pipe.
    """
    global _listener
    if _listener is None:
        sink = logging.StreamHandler(sys.stderr)
        sink.setFormatter(logging.Formatter("%(message)s"))
        log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = logging.handlers.QueueListener(log_queue, sink)
        _listener.start()
        atexit.register(stop_json_logging)
        _queues.append(log_queue)
    handler = logging.handlers.QueueHandler(_queues[-1])
    handler.setFormatter(JsonFormatter())
    handler.set_name("metamedia-json")
    for name in ("metamedia", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "metamedia-json"]
        if name == "uvicorn.access":
            # Our middleware writes one access line per request with the request id; uvicorn's would duplicate it.
            logger.disabled = True
            continue
        if name in ("metamedia", "uvicorn"):
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(level.upper())


_queues: list[queue.SimpleQueue[logging.LogRecord]] = []


def stop_json_logging() -> None:
    """Write out every queued record (called at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
