"""Who is at the other end of a client connection, as the transport knows it.

The runtime fills this in when it accepts a connection and hands it to the
core with the handshake; the core turns it into the connection's implicit
ACL ids (`ip:<address>`, and `x509:<subject>` when TLS verified a client
certificate). Credentials a client sends (add_auth) are not here: those are
checked by the core itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from coord.acl import Id


@dataclass(frozen=True, slots=True)
class ConnectionIdentity:
    ip: str = ""
    """The client's address ("" when unknown, as in tests without sockets)."""
    x509: str = ""
    """The verified TLS client certificate's subject (RFC 2253, e.g. "CN=alice,O=Example");
    empty without TLS or without a client certificate."""

    def ids(self) -> tuple[Id, ...]:
        """The ACL ids every connection with this identity holds from the start."""
        out: tuple[Id, ...] = ()
        if self.ip:
            out += (Id("ip", self.ip),)
        if self.x509:
            out += (Id("x509", self.x509),)
        return out


UNKNOWN: ConnectionIdentity = ConnectionIdentity()
