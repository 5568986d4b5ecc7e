"""Sign in and out of the dashboard."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct

from web.auth import SESSION_USER_KEY, session_principal
from web.ratelimit import check_login
from web.services.accounts import authenticate


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
        await check_login(request.scope, data.email)
        user = await authenticate(data.email, data.password)
        if user is None:
            return Template(
                "login.html",
                context={
                    "next": _safe_next(data.next),
                    "error": "Wrong email or password.",
                    "email": data.email,
                },
                status_code=401,
            )
        request.clear_session()
        request.set_session({SESSION_USER_KEY: str(user.id)})
        return Redirect(_safe_next(data.next or "/calls"), status_code=303)

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect("/login", status_code=303)

    @get("/", name="home")
    async def home(self) -> Redirect:
        return Redirect("/calls")
