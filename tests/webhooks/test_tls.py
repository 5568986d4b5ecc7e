"""HTTPS endpoints: the connection goes to the checked address, TLS checks the URL's name."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook

from tests.conftest import Tenant
from tests.webhooks.conftest import Received, add_endpoint, deliver_until, new_call, upload
from web.models import WebhookDelivery
from web.settings import Settings
from web.webhooks.delivery import Dispatcher


@dataclass
class TlsReceiver:
    port: int
    ca: Path
    received: list[Received]


def _cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for DNS name ``name`` only (not for 127.0.0.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[TlsReceiver]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names ``localhost``."""
    cert, key = _cert(tmp_path, "localhost")
    received: list[Received] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(Received(dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield TlsReceiver(port, cert, received)
    await runner.cleanup()


@pytest.fixture
async def tls_dispatcher(
    settings: Settings, tls_receiver: TlsReceiver
) -> AsyncIterator[Dispatcher]:
    """A dispatcher that trusts the receiver's certificate authority (and no other)."""
    dispatcher = Dispatcher(
        settings, verify=ssl.create_default_context(cafile=str(tls_receiver.ca))
    )
    yield dispatcher
    await dispatcher.close()


async def test_https_goes_to_the_checked_address_with_the_names_sni_and_host(
    client: httpx.AsyncClient,
    tenant: Tenant,
    tls_receiver: TlsReceiver,
    tls_dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    hook = await add_endpoint(client, tenant, f"https://localhost:{tls_receiver.port}/hook")
    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    await deliver_until(tls_dispatcher, lambda: tls_receiver.received)
    got = tls_receiver.received[0]
    assert got.headers["Host"] == f"localhost:{tls_receiver.port}"
    Webhook(hook["secret"]).verify(got.body, got.headers)
    assert (await WebhookDelivery.get(endpoint_id=hook["id"])).status == "delivered"


async def test_a_certificate_for_another_name_is_refused(
    client: httpx.AsyncClient,
    tenant: Tenant,
    tls_receiver: TlsReceiver,
    tls_dispatcher: Dispatcher,
    speech_wav: bytes,
) -> None:
    # The certificate names localhost, not the address: TLS must fail, not be skipped.
    url = f"https://{ipaddress.ip_address('127.0.0.1')}:{tls_receiver.port}/hook"
    hook = await add_endpoint(client, tenant, url)
    await upload(client, tenant, await new_call(client, tenant), speech_wav)

    async def tried() -> bool:
        return (await WebhookDelivery.get(endpoint_id=hook["id"])).attempts >= 1

    await deliver_until(tls_dispatcher, tried)
    row = await WebhookDelivery.get(endpoint_id=hook["id"])
    assert row.status == "pending"
    assert row.last_status_code is None
    assert tls_receiver.received == []
