"""TLS for the client ports: the server's SSLContext and the client certificate's subject.

With `[tls]` in the config, both client ports (native and ZooKeeper) speak
only TLS, from the standard library's ssl module through trio's SSL streams.
`require_client_cert` makes it mutual: a client without a certificate
signed by `ca_file` fails the handshake; with one, its subject becomes the
connection's x509 ACL id (ZooKeeper's X509AuthenticationProvider uses the
subject's distinguished name, e.g. `CN=alice,O=example`).
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import trio

from coord.server.config import TlsSpec


class TlsConfigError(ValueError):
    """The [tls] section names files that cannot make a server context."""


def server_context(spec: TlsSpec) -> ssl.SSLContext:
    """The SSLContext both client ports serve with (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(spec.cert_file, spec.key_file)
        if spec.ca_file is not None:
            context.load_verify_locations(spec.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the TLS files: {exc}") from exc
    if spec.require_client_cert:
        if spec.ca_file is None:
            raise TlsConfigError("require_client_cert needs ca_file (the clients' CA)")
        context.verify_mode = ssl.CERT_REQUIRED
    elif spec.ca_file is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peer_contexts(spec: TlsSpec) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(accepting, connecting) contexts of mutual TLS between members: each side
    presents its certificate and requires the other's, signed by `ca_file`."""
    if spec.ca_file is None:
        raise TlsConfigError("TLS between members needs ca_file (the ensemble's CA)")
    accepting = server_context(spec)
    accepting.verify_mode = ssl.CERT_REQUIRED
    connecting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    connecting.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        connecting.load_verify_locations(spec.ca_file)
        connecting.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the TLS files: {exc}") from exc
    return accepting, connecting


def subject_name(certificate: dict[str, Any] | None) -> str:
    """The x509 id of a verified peer certificate: its subject as `CN=alice,O=example`
    (RFC 4514 order, most specific first, as Java's X500Principal prints it)."""
    if not certificate:
        return ""
    parts: list[str] = []
    for rdn in reversed(certificate.get("subject", ())):
        for key, value in rdn:
            parts.append(f"{_SHORT_NAMES.get(key, key)}={value}")
    return ",".join(parts)


_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "emailAddress": "EMAILADDRESS",
    "domainComponent": "DC",
}


async def handshake_subject(stream: trio.SSLStream[Any]) -> str:
    """Complete the TLS handshake and return the client certificate's subject ("" if none).

    Raises trio.BrokenResourceError when the handshake fails.
    """
    await stream.do_handshake()
    return subject_name(stream.getpeercert())


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps a port on this machine ("localhost", 127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
