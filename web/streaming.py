"""A streamed response that always closes what it streams from, however the client left."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, Protocol

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Scope, Send, TypeEncodersMap


class Closable(Protocol):
    async def aclose(self) -> None: ...


class _ClosingASGIStream(ASGIStreamingResponse):
    __slots__ = ("_source",)

    def __init__(self, *, source: Closable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._source.aclose()


class ClosingStream(Stream):
    """Streams ``content`` and then closes ``source`` (its S3 body, its archive), also
    when the client goes away mid-stream. A HEAD request gets the headers only."""

    def __init__(
        self,
        source: Closable,
        content: AsyncIterable[bytes],
        *,
        media_type: str,
        headers: Mapping[str, str],
        status_code: int = 200,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers, media_type=media_type)
        self.source = source
        self.stream_media_type = media_type

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        merged = {**headers, **self.headers} if headers is not None else self.headers
        all_cookies = self.cookies if cookies is None else itertools.chain(self.cookies, cookies)
        return _ClosingASGIStream(
            source=self.source,
            iterator=self.iterator,
            background=self.background or background,
            content_length=0,
            cookies=all_cookies,
            encoded_headers=encoded_headers,
            headers=merged,
            is_head_response=is_head_response or request.method == "HEAD",
            media_type=self.stream_media_type,
            status_code=self.status_code,
        )
