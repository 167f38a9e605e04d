"""One base exception and named conditions, mapped to HTTP status / CLI exit codes at the edges."""

from __future__ import annotations

import os
import re


class MetamediaError(Exception):
    """Base of every error metamedia raises on purpose."""

    status_code: int = 400
    exit_code: int = 1

    def __init__(self, message: str, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(MetamediaError):
    """A parameter or payload is malformed or out of range."""

    status_code = 422
    exit_code = 2


class InvalidQuery(InvalidInput):
    """A search query or its parameters cannot be understood."""


class InvalidFilter(InvalidInput):
    """A metadata filter is malformed (unknown operator, wrong value type, ...)."""


class DimensionMismatch(InvalidInput):
    """A vector has the wrong dimension for its collection."""


class NotFound(MetamediaError):
    """Something named does not exist."""

    status_code = 404
    exit_code = 3


class ItemNotFound(NotFound):
    """No catalog item with that id."""


class CollectionNotFound(NotFound):
    """No vector collection with that name."""


class UserNotFound(NotFound):
    """No user with that id."""


class Conflict(MetamediaError):
    """The request conflicts with the current state (already exists, ...)."""

    status_code = 409
    exit_code = 4


class IngestError(MetamediaError):
    """A whole ingest input cannot be read (unknown format, missing file)."""

    status_code = 422
    exit_code = 2


class BackendUnavailable(MetamediaError):
    """An optional backend or extra is not installed or cannot be reached."""

    status_code = 503
    exit_code = 5


class Forbidden(MetamediaError):
    """The caller may not do this: another user's data, or a resource the engine owns."""

    status_code = 403
    exit_code = 6


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/:,;()\[\]<>]+/?)+")


def _short_path(match: re.Match[str]) -> str:
    text = match.group(0)
    parts = [p for p in text.split("/") if p]
    if not parts or not os.path.isdir("/" + parts[0]):
        return text  # not a path on this machine (a route such as /collections/media, a ratio)
    return parts[-1]


def without_paths(text: str) -> str:
    """`text` with every absolute path on this machine cut to its last part, for messages sent to
    clients: an error may name the file it could not read, never where the server keeps it."""
    return _ABSOLUTE_PATH.sub(_short_path, text) if "/" in text else text


def public_detail(value: object) -> object:
    """`without_paths` applied to every string inside an error's detail."""
    if isinstance(value, str):
        return without_paths(value)
    if isinstance(value, dict):
        return {k: public_detail(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [public_detail(v) for v in value]
    return value
