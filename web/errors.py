"""The domain's exceptions. Each maps once, in the app factory, to an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """A request cannot be served as asked. ``detail`` is safe to show to a user."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    status_code = 400


class Unprocessable(DomainError):
    status_code = 422


class NotAuthenticated(DomainError):
    status_code = 401


class PermissionDenied(DomainError):
    status_code = 403


class NotFound(DomainError):
    """Also what another org's object answers: it does not exist for the caller."""

    status_code = 404


class Conflict(DomainError):
    status_code = 409


class PayloadTooLarge(DomainError):
    status_code = 413


class InsufficientStorage(DomainError):
    status_code = 507


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
