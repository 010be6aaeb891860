"""Log lines that name the request, organisation and chat session they are about; JSON lines.

The ids live in context variables. The HTTP edge sets them while it handles a request (the
request id first, the organisation once the caller is authorised for it, the chat session
once the request names one), and a session actor's task sets its session's (through the
Telemetry port). A trio task starts with a copy of its parent's, so the tasks a request or an
actor starts carry them too. `ContextFields`, a filter on the logging queue, copies them into
each record in the task that logs it: the line itself is formatted later, in another thread.
A field given with `extra=` wins over the context's.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import time
from contextvars import ContextVar
from typing import Any
from uuid import UUID

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_ORG_ID: ContextVar[str | None] = ContextVar("org_id", default=None)
_SESSION_ID: ContextVar[str | None] = ContextVar("session_id", default=None)
_CONTEXT = {"request_id": _REQUEST_ID, "org_id": _ORG_ID, "session_id": _SESSION_ID}

# What a JSON line holds besides time, level, logger and message, when the record has it:
# the ids, then what the access log says of each request (access_log.py).
FIELDS = ("request_id", "org_id", "session_id", "method", "path", "status", "duration_ms", "events")


def bind_request(request_id: str) -> None:
    """The calling task handles this request from now on (no organisation or session yet)."""
    _REQUEST_ID.set(request_id)
    _ORG_ID.set(None)
    _SESSION_ID.set(None)


def bind(*, org_id: UUID | None = None, session_id: UUID | None = None) -> None:
    """The request being handled turned out to be about this organisation or session."""
    if org_id is not None:
        _ORG_ID.set(str(org_id))
    if session_id is not None:
        _SESSION_ID.set(str(session_id))


def bind_session(org_id: UUID, session_id: UUID) -> None:
    """The calling task works for this chat session, on no request in particular."""
    _REQUEST_ID.set(None)
    _ORG_ID.set(str(org_id))
    _SESSION_ID.set(str(session_id))


class ContextFields(logging.Filter):
    """Stamps each record with the ids of the context it is logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in _CONTEXT.items():
            if getattr(record, name, None) is None:
                setattr(record, name, variable.get())
        return True


class QueuedRecords(logging.handlers.QueueHandler):
    """Puts records on the listener's queue with their message made (arguments merged in) and
    the traceback kept apart, so that either format can lay them out.

    (The stock QueueHandler folds the traceback into the message.)
    """

    _tracebacks = logging.Formatter()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)  # other handlers may see the original
        record.message = record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = record.exc_text or self._tracebacks.formatException(record.exc_info)
            record.exc_info = None  # a traceback object pins every frame's locals meanwhile
        return record


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and the FIELDS a record
    has; `exception` holds a traceback, `stack` a stack."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{created}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)
