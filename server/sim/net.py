"""Simulated links: FIFO streams with delay and loss, partitions, and per-life delivery.

Peer messages go through the real peer codec (encoded, framed by msgpack,
then checked and decoded as the receiving member's boundary does), and
client frames through the real native framing, so what arrives is what a
socket would carry. A link keeps order, like the runtime's TCP links; a drop
loses one message of the stream (the stretch a broken connection loses).
Packets are tied to the sender's life: what a crashed member had queued never
arrives, and what was sent to a member's old life is lost with it.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from coord.framing import NEED_DATA, FrameDecoder, encode_frames
from coord.server.zab.codec import WireMessage, decode_message, encode_message


def through_msgpack(value: Any) -> Any:
    """`value` as the other end of a socket decodes it (one frame)."""
    decoder = FrameDecoder()
    decoder.receive_data(encode_frames([value]))
    frame = decoder.next_frame()
    assert frame is not NEED_DATA
    return frame


@dataclass(order=True)
class Packet:
    at: int
    seq: int
    source: int = field(compare=False)
    target: int = field(compare=False)
    payload: Any = field(compare=False)
    source_life: int = field(compare=False)
    target_life: int = field(compare=False)


class Network:
    """Peer packets between members: delay, drops, partitions, FIFO per link."""

    def __init__(self, rng: random.Random, members: frozenset[int]) -> None:
        self.rng = rng
        self.members = members
        self.drop = 0.0
        self.max_delay = 3
        self.sides: tuple[frozenset[int], ...] = ()
        self._queue: list[Packet] = []
        self._link_due: dict[tuple[int, int], int] = {}
        self._seq = 0
        self.delivered = 0
        self.dropped = 0
        self.lost = 0

    def can_reach(self, a: int, b: int) -> bool:
        return not self.sides or any(a in side and b in side for side in self.sides)

    def send(
        self, now: int, source: int, target: int, message: WireMessage, lives: dict[int, int]
    ) -> None:
        if not self.can_reach(source, target):
            self.lost += 1
            return
        if self.drop and self.rng.random() < self.drop:
            self.dropped += 1
            return
        wire = through_msgpack(encode_message(message))
        at = max(now + self.rng.randint(1, self.max_delay), self._link_due.get((source, target), 0))
        self._link_due[source, target] = at
        self._seq += 1
        packet = Packet(at, self._seq, source, target, wire, lives[source], lives[target])
        heapq.heappush(self._queue, packet)

    def due(
        self, now: int, lives: dict[int, int], up: set[int]
    ) -> list[tuple[int, int, WireMessage]]:
        """Packets arriving now, decoded at the receiver's boundary: (source, target, message)."""
        out: list[tuple[int, int, WireMessage]] = []
        while self._queue and self._queue[0].at <= now:
            packet = heapq.heappop(self._queue)
            alive = packet.target in up and lives[packet.target] == packet.target_life
            if (
                not alive
                or lives[packet.source] != packet.source_life
                or not self.can_reach(packet.source, packet.target)
            ):
                self.lost += 1
                continue
            self.delivered += 1
            out.append((packet.source, packet.target, decode_message(packet.payload, self.members)))
        return out

    def partition(self) -> None:
        ids = sorted(self.members)
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        self.sides = (frozenset(ids[:cut]), frozenset(ids[cut:]))

    def heal(self) -> None:
        self.sides = ()


@dataclass
class ClientConnection:
    """One client connection to one member's life: frames each way, in order, delayed."""

    conn_id: int
    client: int
    member: int
    member_life: int
    to_member: list[tuple[int, Any]] = field(default_factory=list)
    to_client: list[tuple[int, Any]] = field(default_factory=list)
    open: bool = True
    """False once either end closed it; what is still queued is dropped."""
    closing: bool = False
    """The member closed it after its last frames: they still arrive, then it ends."""
    handshake_sent: bool = False
    opened_at: int = 0

    def take(self, queue: list[tuple[int, Any]], now: int) -> list[Any]:
        """The frames of `queue` (in arrival order) that have arrived by `now`."""
        count = 0
        while count < len(queue) and queue[count][0] <= now:
            count += 1
        ready = [frame for _, frame in queue[:count]]
        del queue[:count]
        return ready
