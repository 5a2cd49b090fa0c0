"""TLS on both client ports, with certificates from a throwaway CA (trustme).

Real sockets on 127.0.0.1: the point is the real handshake. The native
client, the shell and kazoo (`use_ssl=True`) connect unchanged but for their
TLS options; with `require_client_cert` the certificate's subject is the
connection's x509 ACL id.
"""

from __future__ import annotations

import io
import ssl
from pathlib import Path

import pytest
import trio

from coord.client import Client, ConnectionLossError, NoAuthError, make_acl
from coord.client.cli import EXIT_OK, EXIT_USAGE, run
from coord.server.config import TlsSpec
from coord.server.runtime.tls import TlsConfigError, is_loopback, server_context, subject_name
from tests.conftest import RunningServer, start_server
from tests.server.tlsfiles import write_pki
from tests.server.zk.test_kazoo import in_thread, kazoo

trustme = pytest.importorskip("trustme", reason="trustme not installed: pip install trustme")

ALICE_SUBJECT = "CN=alice,OU=clients,O=example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pki(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    return write_pki(ca, tmp_path)


def _client_context(pki: dict[str, Path], who: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if who is not None:
        context.load_cert_chain(str(pki[who]))
    return context


async def _tls_server(
    nursery: trio.Nursery, tmp_path: Path, pki: dict[str, Path], *, mutual: bool = False
) -> RunningServer:
    tls = TlsSpec(
        cert_file=pki["server_cert"],
        key_file=pki["server_key"],
        ca_file=pki["ca"],
        require_client_cert=mutual,
    )
    return await start_server(
        nursery, tick_ms=100, data_dir=tmp_path / "data", fsync=False, zk_port=0, tls=tls
    )


async def test_the_native_client_over_tls_and_a_plain_client_is_refused(
    nursery: trio.Nursery, tmp_path: Path, pki: dict[str, Path]
) -> None:
    server = await _tls_server(nursery, tmp_path, pki)
    async with Client(server.hosts, ssl_context=_client_context(pki)) as zk:
        await zk.create("/over-tls", b"secret")
        assert (await zk.get("/over-tls"))[0] == b"secret"
    with pytest.raises(ConnectionLossError):
        async with Client(server.hosts, connect_timeout=0.5):
            pass
    untrusting = ssl.create_default_context()  # the system CAs do not know ours
    with pytest.raises(ConnectionLossError):
        async with Client(server.hosts, connect_timeout=0.5, ssl_context=untrusting):
            pass
    # the failed handshakes left the server serving
    async with Client(server.hosts, ssl_context=_client_context(pki)) as zk:
        assert (await zk.get("/over-tls"))[0] == b"secret"
    assert server.server.stats.bad_frames >= 2


async def test_mutual_tls_makes_the_certificate_subject_an_x509_acl_id(
    nursery: trio.Nursery, tmp_path: Path, pki: dict[str, Path]
) -> None:
    server = await _tls_server(nursery, tmp_path, pki, mutual=True)
    with pytest.raises(ConnectionLossError):  # no client certificate: no handshake
        async with Client(server.hosts, connect_timeout=0.5, ssl_context=_client_context(pki)):
            pass
    alice_only = [make_acl("x509", ALICE_SUBJECT, all=True)]
    async with Client(server.hosts, ssl_context=_client_context(pki, "alice")) as alice:
        await alice.create("/alice", b"mine", acl=alice_only)
        assert (await alice.get("/alice"))[0] == b"mine"
        await alice.add_auth("x509", "")  # names the scheme; the certificate is the id
    async with Client(server.hosts, ssl_context=_client_context(pki, "mallory")) as mallory:
        with pytest.raises(NoAuthError):
            await mallory.get("/alice")


async def test_the_shell_takes_the_tls_options(
    nursery: trio.Nursery, tmp_path: Path, pki: dict[str, Path]
) -> None:
    server = await _tls_server(nursery, tmp_path, pki)
    out, err = io.StringIO(), io.StringIO()
    argv = ["-s", server.hosts, "--tls-ca", str(pki["ca"]), "create", "/sh", "x"]
    assert await run(argv, stdout=out, stderr=err) == EXIT_OK, err.getvalue()
    assert out.getvalue() == "/sh\n"
    argv = ["-s", server.hosts, "--tls-cert", str(pki["alice"]), "ls", "/"]
    assert await run(argv, stdout=out, stderr=err) == EXIT_USAGE
    assert "--tls-cert needs --tls-ca" in err.getvalue()


async def test_kazoo_with_use_ssl_on_the_zookeeper_port(
    nursery: trio.Nursery, tmp_path: Path, pki: dict[str, Path]
) -> None:
    server = await _tls_server(nursery, tmp_path, pki)

    def body() -> None:
        with kazoo(server.zk_hosts, use_ssl=True, ca=str(pki["ca"]), verify_certs=True) as zk:
            zk.create("/k", b"v")
            assert zk.get("/k")[0] == b"v"

    await in_thread(body)


def test_server_context_checks_its_files(tmp_path: Path, pki: dict[str, Path]) -> None:
    spec = TlsSpec(cert_file=pki["server_cert"], key_file=pki["server_key"])
    assert server_context(spec).verify_mode == ssl.CERT_NONE
    with pytest.raises(TlsConfigError, match="ca_file"):
        server_context(spec.model_copy(update={"require_client_cert": True}))
    with pytest.raises(TlsConfigError, match="cannot load"):
        server_context(spec.model_copy(update={"key_file": tmp_path / "missing.key"}))


def test_subject_names_and_loopback_addresses() -> None:
    certificate = {
        "subject": (
            (("organizationName", "example"),),
            (("organizationalUnitName", "clients"),),
            (("commonName", "alice"),),
        )
    }
    assert subject_name(certificate) == ALICE_SUBJECT
    assert subject_name(None) == ""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.org"))
