"""Sign in and out of the dashboard."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct

from web.auth import SESSION_TOKEN_KEY, session_principal, session_token
from web.ratelimit import login_failed, login_refused
from web.services import sessions
from web.services.accounts import authenticate

log = logging.getLogger("talkturo.auth")
SESSION_NOT_SAVED = (
    "Signed in, but the server could not save your session: its database cannot be "
    "written right now (is its disk full?). Please try again in a few minutes."
)


class LoginForm(Struct):
    email: str = ""
    password: str = ""
    next: str = ""


def _safe_next(target: str) -> str:
    """Only a local path, so the login form cannot redirect off-site."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return "/calls"
    return target


class AuthController(Controller):
    include_in_schema = False

    @get("/login", name="login")
    async def login_page(
        self, request: Request[Any, Any, Any], next: str = "/calls"
    ) -> Template | Redirect:
        if await session_principal(request):
            return Redirect(_safe_next(next))
        return Template(
            "login.html", context={"next": _safe_next(next), "error": None, "email": ""}
        )

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        refused = await login_refused(request.scope, data.email)
        if refused is not None:
            if "text/html" not in request.headers.get("accept", ""):
                raise refused
            # On the form, which stays usable: the wait is in the message and in Retry-After.
            return self._form(
                data, refused.detail, 429, {"Retry-After": str(refused.retry_after_s)}
            )
        user = await authenticate(data.email, data.password)
        if user is None:
            await login_failed(request.scope, data.email)
            return self._form(data, "Wrong email or password.", 401)
        try:
            token = await sessions.start(user)
        except Exception:
            log.exception("session of %s not saved", user.id)
            return self._form(data, SESSION_NOT_SAVED, 503, {"Retry-After": "60"})
        request.clear_session()
        request.set_session({SESSION_TOKEN_KEY: token})
        return Redirect(_safe_next(data.next or "/calls"), status_code=303)

    @staticmethod
    def _form(
        data: LoginForm, error: str, status: int, headers: dict[str, str] | None = None
    ) -> Template:
        return Template(
            "login.html",
            context={"next": _safe_next(data.next), "error": error, "email": data.email},
            status_code=status,
            headers=headers,
        )

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the session on the server too: a copy of the cookie no longer works."""
        await sessions.end(session_token(request))
        request.clear_session()
        return Redirect("/login", status_code=303)

    @get("/", name="home")
    async def home(self) -> Redirect:
        return Redirect("/calls")
