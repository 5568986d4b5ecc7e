"""Dashboard pages: Call Logs, Call Detail, Assistants."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.response import Template

from web.auth import Principal, dashboard_principal
from web.models import Call
from web.rendering import render


class DashboardController(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @get("/calls")
    async def calls(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        calls = await Call.filter(org_id=principal.org_id).order_by("-started_at").limit(50)
        ctx = {"calls": calls, "principal": principal, "nav": "calls"}
        return render(request, "calls/index.html", "calls/_rows.html", ctx)
