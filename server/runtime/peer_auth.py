"""The handshake that opens every peer connection: who is on the other end, proven.

With an ensemble secret (mutual HMAC-SHA256 challenge-response):

    connector -> acceptor   {"hello": A, "nonce": nA}
    acceptor  -> connector  {"id": B, "nonce": nB, "proof": mac("acceptor", nA, nB, B, A)}
    connector -> acceptor   {"proof": mac("connector", nA, nB, A, B)}

where mac is HMAC-SHA256 keyed by the secret. Each side proves it knows the
secret over both fresh nonces and its own member id, so a proof cannot be
replayed on another connection, reflected back (the role is in it), or moved
to another id: the hello's member id is bound. Proofs are compared with
hmac.compare_digest. Only after the connector's proof checks does the
acceptor read a single ZAB frame; a connection that fails is closed.

Without a secret the hello is the whole handshake, {"hello": A}, as before
(the member logs a warning at start-up).

Handshake frames are read with a 4 KiB frame limit; the caller puts a
deadline on the whole exchange.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import trio

from coord.errors import ProtocolError
from coord.framing import NEED_DATA, FrameDecoder, encode_frame
from coord.server.config import EnsembleSpec

NONCE_BYTES = 32
HANDSHAKE_MAX_FRAME = 4096
_LABEL = b"coord-peer-auth-v1"


class HandshakeError(Exception):
    """The other end did not prove who it is (or sent something else than a handshake)."""


def proof(secret: bytes, role: str, nonce_a: bytes, nonce_b: bytes, me: int, other: int) -> bytes:
    """HMAC-SHA256 over the role, both nonces, the prover's id and the other end's."""
    message = b"|".join([_LABEL, role.encode(), nonce_a, nonce_b, b"%d" % me, b"%d" % other])
    return hmac.new(secret, message, hashlib.sha256).digest()


async def connect_handshake(
    stream: trio.abc.Stream, my_id: int, peer_id: int, secret: bytes | None
) -> None:
    """(Outbound side) Prove we are `my_id` and check the acceptor is `peer_id`."""
    if secret is None:
        await stream.send_all(encode_frame({"hello": my_id}))
        return
    nonce_a = secrets.token_bytes(NONCE_BYTES)
    await stream.send_all(encode_frame({"hello": my_id, "nonce": nonce_a}))
    decoder = FrameDecoder(max_frame_size=HANDSHAKE_MAX_FRAME)
    reply = await _read_frame(stream, decoder)
    their_id = _field(reply, "id", int)
    nonce_b = _nonce(_field(reply, "nonce", bytes))
    if their_id != peer_id:
        raise HandshakeError(f"dialled member {peer_id}, member {their_id} answered")
    expected = proof(secret, "acceptor", nonce_a, nonce_b, peer_id, my_id)
    if not hmac.compare_digest(expected, _field(reply, "proof", bytes)):
        raise HandshakeError(f"member {peer_id} did not prove it knows the ensemble secret")
    mine = proof(secret, "connector", nonce_a, nonce_b, my_id, peer_id)
    await stream.send_all(encode_frame({"proof": mine}))


async def accept_handshake(
    stream: trio.abc.Stream, my_id: int, spec: EnsembleSpec, secret: bytes | None
) -> tuple[int, bytes]:
    """(Inbound side) The proven sender, and the bytes that came after the handshake."""
    decoder = FrameDecoder(max_frame_size=HANDSHAKE_MAX_FRAME)
    hello = await _read_frame(stream, decoder)
    sender = _field(hello, "hello", int)
    if sender == my_id or sender not in {m.id for m in spec.member}:
        raise HandshakeError(f"hello from {sender!r:.20}, not another member of the ensemble")
    if secret is None:
        if set(hello) != {"hello"}:
            raise HandshakeError("an authenticating hello, but this member has no secret")
        return sender, decoder.peek_prefix(decoder.buffered)
    if set(hello) != {"hello", "nonce"}:
        raise HandshakeError(f"member {sender}'s hello does not authenticate")
    nonce_a = _nonce(_field(hello, "nonce", bytes))
    nonce_b = secrets.token_bytes(NONCE_BYTES)
    mine = proof(secret, "acceptor", nonce_a, nonce_b, my_id, sender)
    await stream.send_all(encode_frame({"id": my_id, "nonce": nonce_b, "proof": mine}))
    answer = await _read_frame(stream, decoder)
    expected = proof(secret, "connector", nonce_a, nonce_b, sender, my_id)
    if not hmac.compare_digest(expected, _field(answer, "proof", bytes)):
        raise HandshakeError(f"a connection claiming member {sender} failed the secret's proof")
    return sender, decoder.peek_prefix(decoder.buffered)


async def _read_frame(stream: trio.abc.Stream, decoder: FrameDecoder) -> Any:
    while True:
        try:
            frame = decoder.next_frame()
        except ProtocolError as exc:
            raise HandshakeError(f"not a handshake frame: {exc}") from None
        if frame is not NEED_DATA:
            return frame
        data = await stream.receive_some(HANDSHAKE_MAX_FRAME)
        if not data:
            raise HandshakeError("the connection closed during the handshake")
        decoder.receive_data(data)


def _field(frame: Any, name: str, kind: type) -> Any:
    if not isinstance(frame, dict) or type(frame.get(name)) is not kind:
        raise HandshakeError(f"expected a handshake frame with {name!r}, got {frame!r:.80}")
    return frame[name]


def _nonce(value: bytes) -> bytes:
    if len(value) != NONCE_BYTES:
        raise HandshakeError(f"a nonce of {len(value)} bytes, expected {NONCE_BYTES}")
    return value
