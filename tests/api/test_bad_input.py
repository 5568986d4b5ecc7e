"""No input gives a 500: deep nesting, the ends of the calendar, huge numbers, odd Unicode
digits and characters a database column cannot hold all get a 4xx with a detail."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from tests.conftest import Tenant, login
from web.models import Org, Plan
from web.services import assistants as assistants_svc
from web.services import calls as calls_svc
from web.services.call_query import parse_filters


async def _call(tenant: Tenant) -> tuple[str, str]:
    assistant = await assistants_svc.create_assistant(tenant.org.id, "Ava", True)
    call = await calls_svc.start_call(
        tenant.org.id, str(assistant.id), "inbound", "+14155550101", "+14155550100", None
    )
    return str(assistant.id), str(call.id)


def _new_call(aid: str, **extra: Any) -> str:
    body = {
        "assistant_id": aid,
        "direction": "inbound",
        "from_number": "+14155550101",
        "to_number": "+14155550100",
        **extra,
    }
    return json.dumps(body)


def _assert_4xx(resp: httpx.Response, what: str) -> None:
    assert 400 <= resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    assert resp.json()["detail"], what


async def test_api_answers_4xx_for_hostile_input(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    await Org.filter(id=tenant.org.id).update(plan=Plan.ENTERPRISE)
    aid, cid = await _call(tenant)
    deep = "[" * 100_000 + "]" * 100_000
    nested_data = '{"data":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"
    moderately_nested = {"data": json.loads('{"a":' * 40 + "1" + "}" * 40)}
    message = {"role": "user", "text": "hi"}
    cases: list[tuple[str, str, str | bytes, str]] = [
        ("POST", "/api/v1/calls", deep, "nests too deeply"),
        ("POST", "/api/v1/calls", '{"assistant_id":' + deep + "}", "nests too deeply"),
        ("PUT", f"/api/v1/calls/{cid}/analysis", nested_data, "nests too deeply"),
        ("PUT", f"/api/v1/calls/{cid}/analysis", json.dumps(moderately_nested), "32 levels"),
        ("POST", "/api/v1/calls", _new_call(aid, started_at="9999-12-31T23:59:59Z"), "2999"),
        ("POST", "/api/v1/calls", _new_call(aid, started_at="0001-01-01T00:00:00Z"), "1970"),
        (
            "POST",
            "/api/v1/calls",
            _new_call(aid, started_at="0001-01-01T00:00:00+14:00"),
            "1970",
        ),
        (
            "POST",
            f"/api/v1/calls/{cid}/end",
            json.dumps({"status": "completed", "ended_at": "9999-12-31T23:59:59Z"}),
            "2999",
        ),
        (
            "PUT",
            f"/api/v1/calls/{cid}/transcript",
            json.dumps({"messages": [{**message, "start_ms": 10**30, "end_ms": 10**30}]}),
            "start_ms",
        ),
        (
            "PUT",
            f"/api/v1/calls/{cid}/transcript",
            json.dumps({"messages": [{**message, "start_ms": 2**63, "end_ms": 2**63}]}),
            "start_ms",
        ),
        (
            "PUT",
            f"/api/v1/calls/{cid}/transcript",
            json.dumps({"messages": [{**message, "start_ms": 0, "end_ms": 2**63 - 1}]}),
            "end_ms",
        ),
        ("PATCH", "/api/v1/org/storage", json.dumps({"retention_days": 10**30}), "retention"),
        ("POST", "/api/v1/assistants", b'{"name": "\xff\xfe"}', "UTF-8"),
        # PostgreSQL cannot store NUL in text: refused there, stored on SQLite.
        ("POST", "/api/v1/assistants", json.dumps({"name": "a\u0000b"}), ""),
        (
            "PUT",
            f"/api/v1/calls/{cid}/transcript",
            json.dumps(
                {"messages": [{"role": "user", "text": "a\u0000", "start_ms": 0, "end_ms": 1}]}
            ),
            "",
        ),
        ("PUT", f"/api/v1/calls/{cid}/analysis", json.dumps({"summary": "a\u0000"}), ""),
    ]
    for method, path, body, detail in cases:
        resp = await client.request(
            method,
            path,
            content=body,
            headers={**tenant.api(), "Content-Type": "application/json"},
        )
        what = f"{method} {path} {str(body)[:60]}"
        if detail == "" and db_backend == "sqlite":
            assert resp.status_code < 500, what
            continue
        _assert_4xx(resp, what)
        assert detail in resp.json()["detail"], what
    for query in (
        "date_to=9999-12-31",
        "date_from=0001-01-01",
        "date_from=9999-12-31&date_to=9999-12-31",
        "date_to=9999-12-31T23:59:59%2B14:00",
        "date_from=0001-01-01T00:00:00-14:00",
        "min_duration=" + "9" * 40,
        "min_duration=%C2%B2",
        "limit=" + "9" * 40,
        "limit=%D9%A2",
        "cursor=" + "A" * 60,
    ):
        resp = await client.get(f"/api/v1/calls?{query}", headers=tenant.api())
        _assert_4xx(resp, query)


async def test_pages_answer_4xx_for_hostile_input(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    await Org.filter(id=tenant.org.id).update(plan=Plan.ENTERPRISE)
    token = await login(client, tenant.admin.email)
    for value in ("\u00b2", "\u0662", "9" * 40, "99999999999", "-1", "1e3"):
        resp = await client.post(
            "/settings/storage",
            data={"action": "retention", "retention_days": value, "_csrf_token": token},
            headers={"HX-Request": "true"},
        )
        assert resp.status_code == 400, value
        assert 'role="alert"' in resp.text, value
    assert (await Org.get(id=tenant.org.id)).retention_days is None
    for query in ("date_to=9999-12-31", "date_from=0001-01-01", "min_duration=%C2%B2"):
        page = await client.get(f"/calls?{query}")
        assert page.status_code == 400, query
        assert "between 1970-01-01 and 2999-12-31" in page.text or "whole number" in page.text


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(["9999-12-31", "0001-01-01", "\u00b2", "\u0662\u0660", "9" * 30, "-0"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            ["date_from", "date_to", "min_duration", "status", "direction", "phone", "q", "cursor"]
        ),
        _TEXT,
    )
)
def test_call_filters_never_raise(params: dict[str, str]) -> None:
    """Any query string gives filters or named errors, never an exception."""
    parsed = parse_filters(MultiDict(params))
    assert isinstance(parsed.errors, dict)
