"""API v1 against its own OpenAPI document at ``/schema``, with schemathesis.

A real ``talkturo serve`` subprocess (SQLite, local storage) with an enterprise org and
an admin key; schemathesis generates requests for every API v1 operation from the schema
(bounded and derandomized, so the run is the same every time) and checks that nothing
answers 5xx and every response matches what the schema documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import ServerProcess, make_env, start_server, talkturo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A served app with one enterprise org, its admin key, an assistant and a call."""
    tmp = tmp_path_factory.mktemp("schema")
    env = make_env(tmp / "data", f"sqlite://{tmp}/talkturo.sqlite3")
    org = talkturo(env, "org", "create", "Schema Co", "--plan", "enterprise")
    assert org.returncode == 0, org.stderr
    key = talkturo(env, "apikey", "create", "--org", org.stdout.strip())
    assert key.returncode == 0, key.stderr
    token = key.stdout.strip()
    server = start_server(env, tmp / "server.log")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        asst = httpx.post(
            f"{server.url}/api/v1/assistants", json={"name": "Bot"}, headers=auth, timeout=10
        )
        call = httpx.post(
            f"{server.url}/api/v1/calls",
            json={
                "assistant_id": asst.json()["id"],
                "direction": "inbound",
                "from_number": "+14155550101",
                "to_number": "+14155550100",
            },
            headers=auth,
            timeout=10,
        )
        assert call.status_code == 201, call.text
        yield server, token
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(api_server: tuple[ServerProcess, str]) -> Any:
    """The served OpenAPI document, API v1 operations only."""
    server, token = api_server
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    schema.config.update(headers={"Authorization": f"Bearer {token}"}, base_url=server.url)
    return schema.include(path_regex=r"^/api/v1/").exclude(
        # Binary audio uploads have their own tests (tests/ingest); random bytes only 4xx.
        method="PUT",
        path_regex=r"/recording$",
    )


def test_api_v1_matches_its_schema(api_schema: Any) -> None:
    from hypothesis import given
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [op.ok() for op in api_schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    sent = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal sent
            sent += 1
            case.call_and_validate(checks=checks, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert sent >= 3 * len(operations)


def test_schema_documents_errors_and_examples(api_server: tuple[ServerProcess, str]) -> None:
    server, _ = api_server
    doc = httpx.get(f"{server.url}/schema/openapi.json", timeout=10).json()
    assert sorted(doc["components"]["schemas"]["ErrorBody"]["required"]) == [
        "detail",
        "status_code",
    ]
    for path, item in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            codes = set(op["responses"])
            assert "401" in codes, (method, path)
            assert any(c.startswith("2") for c in codes), (method, path)
            for code, resp in op["responses"].items():
                if code.startswith("4"):
                    content = resp["content"]["application/json"]
                    assert content["schema"]["$ref"].endswith("/ErrorBody"), (method, path, code)
                    assert content["examples"], (method, path, code)
