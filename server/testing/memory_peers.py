"""In-memory peer links between members running in one trio run, with partitions.

`MemoryNetwork` is the wire: it knows which members are listening and which
links a partition cuts. Each member gets a `MemoryPeerNetwork`, with the
interface of the TCP `PeerNetwork` (coord.server.runtime.peers): `serve` in the
member's nursery, `send(peer, message)` from anywhere in it.

A message still goes through the wire format: it is encoded (coord.server.zab.codec,
then length-prefixed frames, fragments if it is big) when sent, and framed,
reassembled, checked and decoded again by the
receiver's own task before the receiver sees it, so an encoding bug shows up
here as it would between processes. Delivery keeps the promises of TCP links
and no more: per pair of members, in order; a message to a member that is
down, or across a cut link, or into a full queue, is dropped, and the protocol
recovers (a follower that misses something asks to be synced again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio

from coord.errors import ProtocolError
from coord.server.config import EnsembleSpec
from coord.server.runtime.peers import PEER_QUEUE, Deliver, LinkLost, PeerStream
from coord.server.zab.codec import FragmentBudget, PeerDecodeError, WireMessage, encode_wire

log = logging.getLogger(__name__)


class MemoryNetwork:
    """The links between in-process members: who listens, and what a partition cuts."""

    def __init__(self) -> None:
        self._inboxes: dict[int, trio.MemorySendChannel[tuple[int, bytes]]] = {}
        self._side: dict[int, int] = {}
        """member -> the index of its side of the partition; empty when healed."""
        self._rest = 0
        """The side of the members no side names."""
        self.delivered = 0
        self.dropped = 0

    # -- faults ----------------------------------------------------------------------

    def partition(self, *sides: Iterable[int]) -> None:
        """Cut every link between members on different sides; links within a side work.

        A member named on no side is on one more side, with the other unnamed
        members: `partition({1})` cuts member 1 off from everyone else.
        Replaces any earlier partition.
        """
        side_of: dict[int, int] = {}
        for index, side in enumerate(sides):
            for member in side:
                if member in side_of:
                    raise ValueError(f"member {member} is on two sides of the partition")
                side_of[member] = index
        self._side = side_of
        self._rest = len(sides)

    def heal(self) -> None:
        """Every link works again."""
        self._side = {}

    def connected(self, a: int, b: int) -> bool:
        """Whether messages from `a` reach `b` (if `b` is listening)."""
        if not self._side:
            return True
        return self._side.get(a, self._rest) == self._side.get(b, self._rest)

    # -- the transport's side ----------------------------------------------------------

    def links_for(
        self, my_id: int, spec: EnsembleSpec, deliver: Deliver, lost: LinkLost | None = None
    ) -> MemoryPeerNetwork:
        """A member's links (the signature of `PeerTransportFactory`). In-memory links
        never close, as a partition here drops frames the way a firewall does: `lost`
        is never called, and the members notice silence by their leases."""
        return MemoryPeerNetwork(self, my_id, spec, deliver)

    def _attach(self, member: int, inbox: trio.MemorySendChannel[tuple[int, bytes]]) -> None:
        self._inboxes[member] = inbox

    def _detach(self, member: int, inbox: trio.MemorySendChannel[tuple[int, bytes]]) -> None:
        if self._inboxes.get(member) is inbox:  # not a newer life's inbox
            del self._inboxes[member]

    def _carry(self, sender: int, target: int, frame: bytes) -> bool:
        inbox = self._inboxes.get(target)
        if inbox is None or not self.connected(sender, target):
            self.dropped += 1
            return False
        try:
            inbox.send_nowait((sender, frame))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1
            return False
        self.delivered += 1
        return True


class MemoryPeerNetwork:
    """One member's links over a `MemoryNetwork`; the interface of `PeerNetwork`."""

    def __init__(
        self, network: MemoryNetwork, my_id: int, spec: EnsembleSpec, deliver: Deliver
    ) -> None:
        self.network = network
        self.my_id = my_id
        self.spec = spec
        self.deliver = deliver
        self._peers = frozenset(m.id for m in spec.member if m.id != my_id)
        self.dropped = 0
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled: decode what arrives and hand it to the member, in order."""
        send, receive = trio.open_memory_channel[tuple[int, bytes]](PEER_QUEUE)
        budget = FragmentBudget(self.spec.peer_max_message_bytes)
        decoders = {peer: PeerStream(self.spec, budget) for peer in self._peers}
        self.network._attach(self.my_id, send)
        try:
            task_status.started(0)
            async for sender, data in receive:
                decoder = decoders[sender]
                try:
                    decoder.receive_data(data)
                    for message in decoder.messages():
                        self.deliver(sender, message)
                except (PeerDecodeError, ValueError, ProtocolError) as exc:
                    # What the TCP links do with a bad frame: drop that link.
                    log.warning("dropping a peer link from member %s: %s", sender, exc)
                    decoder.close()
                    decoders[sender] = PeerStream(self.spec, budget)
        finally:
            self.network._detach(self.my_id, send)

    def send(self, peer_id: int, message: WireMessage) -> None:
        if peer_id not in self._peers:
            return
        for frame in encode_wire(message, self.spec.peer_max_frame_bytes):
            if not self.network._carry(self.my_id, peer_id, frame):
                self.dropped += 1
                return
