"""OpenAPI helpers: the error shape every 4xx of API v1 answers with, and its examples."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from msgspec import Struct


class ErrorBody(Struct):
    """What every API error answers: the HTTP status and a sentence naming the problem."""

    status_code: int
    detail: str


# A typical detail per status, shown as the example of each documented error.
ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "retention_days must be a whole number of days from 1 to 36500."),
    401: ("No valid API key", "A valid API key is required: Authorization: Bearer <key>."),
    403: ("Not allowed", "This needs an admin."),
    404: ("Not found (also another org's object)", "No such call."),
    409: ("Conflict with the current state", "The call already ended as completed."),
    413: ("Too large", "The upload is larger than the limit."),
    422: ("Cannot be processed", "No such bucket: bucket 'acme' does not exist at this endpoint."),
    429: ("Rate limited (see Retry-After)", "Too many requests; try again in 42 seconds."),
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for ``codes``, each with the ``{"status_code", "detail"}`` shape."""
    specs: dict[int, ResponseSpec] = {}
    for code in codes:
        summary, detail = ERROR_EXAMPLES[code]
        specs[code] = ResponseSpec(
            data_container=ErrorBody,
            description=summary,
            generate_examples=False,
            examples=[Example(summary=summary, value={"status_code": code, "detail": detail})],
        )
    return specs


def ok_response(
    model: Any, description: str, example: dict[str, Any], code: int = 200
) -> dict[int, ResponseSpec]:
    """The success response of a route with a documented example."""
    return {
        code: ResponseSpec(
            data_container=model,
            description=description,
            generate_examples=False,
            examples=[Example(summary=description, value=example)],
        )
    }
