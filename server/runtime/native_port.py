"""The native client port: msgpack frames in, handshake first, then requests.

Its connections are accepted and served by the shared client listener
(coord.server.runtime.client_listener); this module is only the native wire: the
read loop; its codec is coord.server.native.codec.

Every frame is checked at this boundary: the handshake is validated by
`parse_connect`, a request's envelope by `_split_request`, its body by the
core. A frame that breaks the protocol gets a notice and the connection
closes after it; the server carries on.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from coord.errors import MalformedFrameError, MarshallingError, ProtocolError, ServerSystemError
from coord.framing import NEED_DATA, FrameDecoder
from coord.messages import parse_connect
from coord.server.core.output import ErrorReply, Notice
from coord.server.native.codec import send
from coord.server.runtime.client_listener import PortServer
from coord.server.runtime.links import NATIVE_CODEC, ClientLink, FrameCodec

log = logging.getLogger(__name__)


class NativePort:
    """The native port of one server: every connection's wire (it keeps no state of its own)."""

    def __init__(self, server: PortServer) -> None:
        self.server = server

    @property
    def codec(self) -> FrameCodec:
        return NATIVE_CODEC

    def wire(self, host: str, address: str) -> NativePort:
        return self

    async def serve(self, link: ClientLink) -> None:
        """Read one native connection: its handshake, then requests, into the core."""
        server = self.server
        core, clock, stats = server.core, server.clock, server.stats
        assert core is not None and clock is not None
        decoder = FrameDecoder()
        handshake_done = False
        while data := await link.receive():
            decoder.receive_data(data)
            while True:
                try:
                    frame = decoder.next_frame()
                    if frame is NEED_DATA:
                        break
                    now = clock.now_ms()
                    if not handshake_done:
                        core.connect(
                            link.conn_id,
                            parse_connect(frame),
                            now_ms=now,
                            password=secrets.token_bytes(16),
                            identity=link.identity,
                        )
                        handshake_done = link.handshaken = True
                    else:
                        xid, op, body = _split_request(frame)
                        stats.requests += 1
                        try:
                            core.request(link.conn_id, xid, op, body, now_ms=now)
                        except Exception as exc:  # a bug must not take the server down
                            # op and xid only: a body may carry credentials (add_auth, ACLs)
                            log.exception("request op %d xid %d failed inside the server", op, xid)
                            error = ServerSystemError(f"internal error: {exc!r}")
                            link.send(send(ErrorReply(xid, 0, error)))
                except (ProtocolError, MarshallingError) as exc:
                    stats.bad_frames += 1
                    server.clients.warn_limited("closing connection from %s: %s", link.address, exc)
                    link.send(send(Notice(0, MarshallingError(str(exc)))))
                    server.kick()
                    await link.finish()  # the writer sends the notice, then ends the connection
                    return
            server.kick()


def _split_request(frame: Any) -> tuple[int, int, Any]:
    """Check a request frame's envelope: [xid:int, op:int, body:map|nil]."""
    if (
        not isinstance(frame, list)
        or len(frame) != 3
        or type(frame[0]) is not int
        or type(frame[1]) is not int
        or not (frame[2] is None or isinstance(frame[2], dict))
    ):
        raise MalformedFrameError(
            f"a request must be [xid:int, op:int, body:map], got {_preview(frame)}"
        )
    return frame[0], frame[1], frame[2]


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
