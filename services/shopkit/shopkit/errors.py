"""Errors as JSON answers: every failure a client sees names the problem, never a stack trace."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with the HTTP status and the JSON body the client gets."""

    status = 400

    def __init__(self, message: str, status: int | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.details}


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class UpstreamError(ApiError):
    """A neighbour failed. The subclasses map what went wrong to the status a gateway would use."""

    status = 502

    def __init__(self, upstream: str, message: str, **details: Any):
        super().__init__(message, upstream=upstream, **details)
        self.upstream = upstream


class UpstreamUnavailable(UpstreamError):
    """Connection refused or reset, DNS failure, or a 503 from a proxy in between."""

    status = 503
    outcome = "unavailable"


class UpstreamTimeout(UpstreamError):
    """No answer within the read timeout, or a 504 from a proxy in between."""

    status = 504
    outcome = "timeout"


class UpstreamBadResponse(UpstreamError):
    """An answer that is not the JSON the contract promises (an HTML error page, a proxy's plain-text 403, ...)."""

    status = 502
    outcome = "bad_response"
