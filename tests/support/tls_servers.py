"""TLS for the tests: a throwaway CA and server certificate, and aiohttp apps served over TLS on 127.0.0.1.

The CA is made here with ``cryptography`` (already a dependency, through PyJWT
and the okta SDK): no network, no fixture files that could expire.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path
    """The CA certificate: what ``ca_bundle`` points to."""
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls_files(directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A CA, and a server certificate it signed for ``hosts`` (IP addresses or DNS names), as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("okta-reconciler test CA"))
        .issuer_name(_name("okta-reconciler test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_pem.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key_pem.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key_pem.chmod(0o600)
    return files


def empty_scim_app() -> web.Application:
    """A SCIM endpoint under ``/v2`` with no users: enough for a dry-run to read it whole."""

    async def users(request: web.Request) -> web.Response:
        body = {"schemas": [LIST_RESPONSE_URN], "totalResults": 0, "startIndex": 1, "Resources": []}
        return web.json_response(body, content_type="application/scim+json")

    async def not_found(request: web.Request) -> web.Response:
        return web.json_response({"status": "404", "detail": "no such endpoint"}, status=404)

    app = web.Application()
    app.router.add_get("/v2/Users", users)
    app.router.add_route("*", "/v2/{tail:.*}", not_found)
    return app


@contextmanager
def serve_in_thread(apps: Sequence[tuple[web.Application, ssl.SSLContext | None]]) -> Iterator[list[str]]:
    """Serve each app on its own 127.0.0.1 port (TLS when given a context), from one daemon thread.

    Yields the base URLs (``https://127.0.0.1:PORT`` or ``http://...``), in order. For code that runs its own
    event loop, such as the ``reconcile`` command.
    """
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    urls: list[str] = []

    async def start() -> None:
        for app, context in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
            runners.append(runner)
            host, port = runner.addresses[0][:2]
            urls.append(f"{'https' if context else 'http'}://{host}:{port}")

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_forever, name="tls-servers", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield urls
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
