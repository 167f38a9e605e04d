"""One base exception and named conditions, mapped to HTTP status / CLI exit codes at the edges."""

from __future__ import annotations


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
