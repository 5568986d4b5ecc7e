"""Dashboard settings: Storage (plan, retention, own bucket), API keys and legal hold for
admins; every user's own password."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.response import Template

from web.auth import Principal, dashboard_admin, dashboard_principal
from web.errors import DomainError, InvalidInput, PermissionDenied
from web.forms import form_bool
from web.models import Plan
from web.rendering import render
from web.services import accounts, org_storage, retention
from web.settings import Settings
from web.tenancy import api_keys_of, get_call, get_org, parse_id

_BUCKET_FIELDS = org_storage.BUCKET_FIELDS


def _admins_only(what: str) -> dict[str, Any]:
    """Handler options: only admins pass (the guard's 403 names ``what``)."""
    reason = f"Only admins can see or change {what}. Ask an admin of your org."
    return {"guards": [dashboard_admin], "opt": {"admin_reason": reason}}


_STORAGE = _admins_only("storage settings")
_KEYS = _admins_only("API keys")


def _plans() -> list[dict[str, Any]]:
    return [{"name": p.value, "retention": retention.describe(p)} for p in Plan]


async def _storage_context(
    settings: Settings, principal: Principal, **extra: Any
) -> dict[str, Any]:
    org = await get_org(principal.org_id)
    view = org_storage.view(org, settings.secret_key)
    return {
        "principal": principal,
        "nav": "storage",
        "org": org,
        "view": view,
        "plans": _plans(),
        "is_enterprise": org.plan == Plan.ENTERPRISE,
        "form": {k: (view.get(k) or "") for k in _BUCKET_FIELDS if k != "secret_access_key"},
        "error": None,
        "saved": None,
        **extra,
    }


def _form_changes(form: dict[str, str], view: dict[str, Any]) -> dict[str, Any]:
    """What the Storage form asks to change, in the API's terms."""
    action = form.get("action", "")
    if action == "retention":
        if form.get("forever") == "on":
            return {"retention_days": None}
        raw = form.get("retention_days", "").strip()
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise InvalidInput("Retention must be a whole number of days, or keep forever.")
        return {"retention_days": int(raw)}
    if action == "remove-bucket":
        return {"bucket": None}
    if action == "bucket":
        changes: dict[str, Any] = {k: form.get(k, "") for k in _BUCKET_FIELDS}
        if not changes["secret_access_key"].strip() and view.get("bucket"):
            # Left blank: keep the stored secret (only allowed with the same access key id).
            del changes["secret_access_key"]
        return changes
    raise InvalidInput("Unknown action.")


class SettingsController(Controller):
    """Admins' settings pages; agents get a readable 403."""

    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @get("/settings/storage", **_STORAGE)
    async def storage(
        self, request: Request[Any, Any, Any], settings: Settings, principal: Principal
    ) -> Template:
        """Plan, retention per plan, and (enterprise) the own-bucket form."""
        ctx = await _storage_context(settings, principal)
        return render(request, "settings/storage.html", "settings/_storage.html", ctx)

    @post("/settings/storage", status_code=200, **_STORAGE)
    async def save_storage(
        self, request: Request[Any, Any, Any], settings: Settings, principal: Principal
    ) -> Template:
        """Save retention or the own bucket; errors come back in the form, nothing saved."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        ctx = await _storage_context(settings, principal)
        try:
            changes = _form_changes(form, ctx["view"])
            await org_storage.update(
                principal.org_id, settings.secret_key, changes, settings.endpoints
            )
        except DomainError as exc:
            if isinstance(exc, PermissionDenied):
                raise
            ctx["error"] = exc.detail
            ctx["form"] = {k: form.get(k, "") for k in _BUCKET_FIELDS if k != "secret_access_key"}
            status = exc.status_code
            return render(
                request, "settings/storage.html", "settings/_storage.html", ctx, status_code=status
            )
        saved = "Saved. New recordings follow these settings from now on."
        ctx = await _storage_context(settings, principal, saved=saved)
        return render(request, "settings/storage.html", "settings/_storage.html", ctx)

    @get("/settings/api-keys", **_KEYS)
    async def api_keys(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """The org's API keys: name, prefix, role, created, last used, revoked."""
        return await self._keys_page(request, principal)

    @post("/settings/api-keys", status_code=200, **_KEYS)
    async def create_key(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """Create a key; its value is shown on this answer only."""
        form = await request.form()
        role = accounts.parse_key_role(str(form.get("role", "admin")))
        org = await get_org(principal.org_id)
        row, key = await accounts.create_api_key(org, str(form.get("name", "")), role)
        return await self._keys_page(request, principal, new_key=key, new_row=row)

    @post("/settings/api-keys/{key_id:str}/revoke", status_code=200, **_KEYS)
    async def revoke_key(
        self, request: Request[Any, Any, Any], principal: Principal, key_id: str
    ) -> Template:
        """Revoke a key: requests with it answer 401 from now on."""
        await accounts.revoke_api_key(principal.org_id, parse_id(key_id, "API key"))
        return await self._keys_page(request, principal, revoked=key_id)

    async def _keys_page(
        self, request: Request[Any, Any, Any], principal: Principal, **extra: Any
    ) -> Template:
        keys = await api_keys_of(principal.org_id)
        ctx = {"principal": principal, "nav": "api-keys", "keys": keys, **extra}
        return render(request, "settings/api_keys.html", "settings/_api_keys.html", ctx)

    @get("/settings/password")
    async def password(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """The signed-in user's password form (admins and agents)."""
        return self._password_page(request, principal)

    @post("/settings/password", status_code=200)
    async def change_password(
        self, request: Request[Any, Any, Any], principal: Principal
    ) -> Template:
        """Check the current password, set the new one, end the user's other sessions."""
        form = await request.form()
        assert principal.user_id is not None
        try:
            ended = await accounts.change_password(
                principal.user_id,
                str(form.get("current_password", "")),
                str(form.get("new_password", "")),
                keep_session=principal.session_id,
            )
        except InvalidInput as exc:
            return self._password_page(request, principal, error=exc.detail, status=400)
        others = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
        return self._password_page(request, principal, saved=f"Password changed.{others}")

    @staticmethod
    def _password_page(
        request: Request[Any, Any, Any],
        principal: Principal,
        *,
        error: str | None = None,
        saved: str | None = None,
        status: int = 200,
    ) -> Template:
        ctx = {
            "principal": principal,
            "nav": "password",
            "error": error,
            "saved": saved,
            "min_length": accounts.MIN_PASSWORD,
        }
        return render(
            request, "settings/password.html", "settings/_password.html", ctx, status_code=status
        )

    @post("/calls/{call_id:str}/legal-hold", status_code=200)
    async def legal_hold(
        self, request: Request[Any, Any, Any], principal: Principal, call_id: str
    ) -> Template:
        """Turn legal hold on or off (``legal_hold=true|false``); answers the fragment."""
        # Looked up first: another org's call is "not found" for admins and agents alike.
        await get_call(principal.org_id, call_id)
        principal.require_admin("Only admins can put a recording under legal hold.")
        hold = await form_bool(request, "legal_hold")
        rec = await retention.set_legal_hold(principal.org_id, call_id, hold)
        call = await get_call(principal.org_id, call_id)
        return Template(
            "calls/_legal_hold.html",
            context={"principal": principal, "call": call, "recording": rec, "changed": True},
        )
