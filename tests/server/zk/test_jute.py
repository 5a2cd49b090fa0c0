"""The jute codec: every record round-trips, the layouts are ZooKeeper's, bad bytes are refused."""

from __future__ import annotations

import struct

import pytest

from coord.errors import FrameTooLargeError
from coord.framing import NEED_DATA
from coord.messages import Stat
from coord.server.zk import jute
from coord.server.zk.jute import (
    ACL,
    MAX_PACKET,
    ClientInfo,
    ConnectRequest,
    ConnectResponse,
    Id,
    JuteDecodeError,
    MultiRequest,
    MultiResponse,
    OpResult,
    PacketDecoder,
    Reader,
    Record,
    RequestHeader,
    ZkOp,
)

STAT = Stat(0x100000002, 0x100000003, 1_700_000_000_000, 1_700_000_000_500, 3, 2, 1, 0, 5, 2, 7)
OWNED = STAT._replace(ephemeral_owner=(200 << 56) | 12345)  # a member id >= 128: top bit set
OPEN = [ACL(31, Id("world", "anyone"))]
DIGEST = [ACL(1, Id("digest", "bob:Zm9v")), ACL(30, Id("ip", "10.0.0.1"))]

RECORDS: list[Record] = [
    Id("world", "anyone"),
    ACL(31, Id("digest", "u:x")),
    ClientInfo("ip", "127.0.0.1"),
    RequestHeader(7, ZkOp.GET_DATA),
    jute.ReplyHeader(7, 0x100000005, -101),
    jute.MultiHeader(1, False, -1),
    ConnectRequest(0, 0x100000001, 30_000, 0, bytes(16), False),
    ConnectRequest(0, 0, 30_000, (200 << 56) | 1, b"p" * 16, True),
    ConnectRequest(0, 0, 10_000, 5, b"p" * 16, None),
    ConnectResponse(0, 4000, (1 << 56) | 9, b"q" * 16, False),
    ConnectResponse(0, 0, 0, bytes(16), None),
    jute.WatcherEvent(3, 3, "/a/b"),
    jute.ErrorResponse(-110),
    jute.AuthPacket(0, "digest", b"user:secret"),
    jute.SetWatches(9, ["/d"], ["/e1", "/e2"], []),
    jute.SetWatches2(9, ["/d"], [], ["/c"], ["/p"], ["/r"]),
    jute.CreateRequest("/a", b"data", OPEN, 3),
    jute.CreateRequest("/n", None, DIGEST, 0),
    jute.CreateTTLRequest("/t", b"", OPEN, 5, 60_000),
    jute.DeleteRequest("/a", -1),
    jute.CheckVersionRequest("/a", 4),
    jute.PathWatchRequest("/a", True),
    jute.PathRequest("/a"),
    jute.SetDataRequest("/a", b"\x00\xff", 2),
    jute.SetACLRequest("/a", DIGEST, -1),
    jute.WatchesRequest("/a", 3),
    jute.AddWatchRequest("/a", 1),
    jute.ReconfigRequest(None, None, "server.1=h:1:2", -1),
    jute.SaslRequest(b"token"),
    jute.CreateResponse("/a0000000001"),
    jute.Create2Response("/a", STAT),
    jute.StatResponse(OWNED),
    jute.GetDataResponse(b"v" * 300, STAT),
    jute.GetDataResponse(None, STAT),
    jute.GetChildrenResponse(["b", "a", "é"]),
    jute.GetChildrenResponse([]),
    jute.GetChildren2Response(["x"], STAT),
    jute.GetACLResponse(OPEN, STAT),
    jute.PathResponse("/a"),
    jute.GetAllChildrenNumberResponse(42),
    jute.GetEphemeralsResponse(["/e1", "/e2"]),
    jute.WhoAmIResponse([ClientInfo("ip", "127.0.0.1"), ClientInfo("digest", "u:x")]),
    MultiRequest(
        (
            (ZkOp.CREATE, jute.CreateRequest("/m", b"1", OPEN, 0)),
            (ZkOp.CREATE2, jute.CreateRequest("/m2", b"", OPEN, 1)),
            (ZkOp.CREATE_TTL, jute.CreateTTLRequest("/m3", b"", OPEN, 5, 10)),
            (ZkOp.CHECK, jute.CheckVersionRequest("/x", 1)),
            (ZkOp.SET_DATA, jute.SetDataRequest("/x", b"2", -1)),
            (ZkOp.DELETE, jute.DeleteRequest("/y", -1)),
        )
    ),
    MultiRequest(
        (
            (ZkOp.GET_DATA, jute.PathWatchRequest("/a", False)),
            (ZkOp.GET_CHILDREN, jute.PathWatchRequest("/", True)),
        )
    ),
    MultiRequest(()),
    MultiResponse(
        (
            OpResult(ZkOp.CREATE, 0, jute.CreateResponse("/m")),
            OpResult(ZkOp.CREATE2, 0, jute.Create2Response("/m2", STAT)),
            OpResult(ZkOp.CHECK, 0, None),
            OpResult(ZkOp.SET_DATA, 0, jute.StatResponse(STAT)),
            OpResult(ZkOp.DELETE, 0, None),
            OpResult(ZkOp.GET_DATA, 0, jute.GetDataResponse(b"d", STAT)),
            OpResult(ZkOp.GET_CHILDREN, 0, jute.GetChildrenResponse(["c"])),
            OpResult(ZkOp.ERROR, -101, jute.ErrorResponse(-101)),
        )
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(record: Record) -> None:
    data = record.to_bytes()
    reader = Reader(data)
    assert type(record).read(reader) == record
    assert reader.remaining == 0


def test_layouts_are_zookeepers() -> None:
    # Stat is 68 bytes; a ConnectResponse with a 16-byte password 37 (36 without the flag).
    assert len(jute.StatResponse(STAT).to_bytes()) == 68
    assert len(ConnectResponse(0, 4000, 1, bytes(16), False).to_bytes()) == 37
    assert len(ConnectRequest(0, 0, 4000, 0, bytes(16), None).to_bytes()) == 44
    assert len(ConnectRequest(0, 0, 4000, 0, bytes(16), False).to_bytes()) == 45
    assert jute.ReplyHeader(-1, -1, 0).to_bytes() == struct.pack(">iqi", -1, -1, 0)
    created = jute.CreateRequest("/a", b"xy", OPEN, 1).to_bytes()
    assert created == (
        struct.pack(">i", 2) + b"/a" + struct.pack(">i", 2) + b"xy"
        + struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world"
        + struct.pack(">i", 6) + b"anyone" + struct.pack(">i", 1)
    )  # fmt: skip
    # A multi ends with {-1, true, -1}.
    assert MultiRequest(()).to_bytes() == struct.pack(">i?i", -1, True, -1)


def test_nulls_travel_as_minus_one() -> None:
    assert jute.PathRequest(None).to_bytes() == struct.pack(">i", -1)
    assert jute.GetDataResponse(None, STAT).to_bytes()[:4] == struct.pack(">i", -1)
    assert jute.GetChildrenResponse(None).to_bytes() == struct.pack(">i", -1)
    assert jute.GetChildrenResponse.from_bytes(struct.pack(">i", -1)).children is None


def test_session_ids_with_the_top_bit_are_signed_on_the_wire() -> None:
    session_id = (200 << 56) | 1
    data = ConnectResponse(0, 4000, session_id, bytes(16), False).to_bytes()
    assert struct.unpack_from(">q", data, 8)[0] < 0
    assert ConnectResponse.from_bytes(data).session_id == session_id
    assert jute.to_unsigned64(jute.to_signed64(session_id)) == session_id
    assert jute.StatResponse.from_bytes(jute.StatResponse(OWNED).to_bytes()).stat == OWNED


def test_requests_decode_by_op_code() -> None:
    packet = jute.encode_request(RequestHeader(5, ZkOp.EXISTS), jute.PathWatchRequest("/a", True))
    header, body = jute.decode_request(packet[4:])
    assert header == RequestHeader(5, ZkOp.EXISTS)
    assert body == jute.PathWatchRequest("/a", True)
    header, body = jute.decode_request(jute.encode_request(RequestHeader(-2, ZkOp.PING))[4:])
    assert header.type == ZkOp.PING and body is None
    # An op we do not know: the header alone, the body left for an Unimplemented answer.
    header, body = jute.decode_request(RequestHeader(9, 999).to_bytes() + b"whatever")
    assert header.type == 999 and body is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # shorter than a header
        RequestHeader(1, ZkOp.GET_DATA).to_bytes() + struct.pack(">i", 10) + b"/a",  # short path
        RequestHeader(1, ZkOp.GET_DATA).to_bytes() + struct.pack(">i", -7),  # bad length
        RequestHeader(1, ZkOp.GET_DATA).to_bytes() + struct.pack(">i", 2) + b"\xff\xfe\x00",
        RequestHeader(1, ZkOp.MULTI).to_bytes() + jute.MultiHeader(99, False, -1).to_bytes(),
        RequestHeader(1, ZkOp.GET_CHILDREN).to_bytes()
        + struct.pack(">i", 1)
        + b"/",  # no watch flag
    ],
)
def test_bad_bytes_raise_a_decode_error(data: bytes) -> None:
    with pytest.raises(JuteDecodeError):
        jute.decode_request(data)


def test_multi_response_refuses_an_unknown_result_type() -> None:
    data = jute.MultiHeader(77, False, 0).to_bytes()
    with pytest.raises(JuteDecodeError):
        MultiResponse.from_bytes(data)


def test_packet_decoder_splits_and_waits() -> None:
    decoder = PacketDecoder()
    stream = jute.frame(b"one") + jute.frame(b"") + jute.frame(b"three")
    decoder.receive_data(stream[:5])
    assert decoder.next_packet() is NEED_DATA
    decoder.receive_data(stream[5:])
    assert [decoder.next_packet() for _ in range(3)] == [b"one", b"", b"three"]
    assert decoder.next_packet() is NEED_DATA


@pytest.mark.parametrize("length", [MAX_PACKET + 1, 0x72756F6B, -1])
def test_packet_decoder_refuses_lengths_outside_jute_maxbuffer(length: int) -> None:
    decoder = PacketDecoder()
    decoder.receive_data(struct.pack(">i", length))
    with pytest.raises(FrameTooLargeError):
        decoder.next_packet()


def test_packet_of_exactly_the_limit_is_accepted() -> None:
    decoder = PacketDecoder()
    decoder.receive_data(jute.frame(bytes(MAX_PACKET)))
    assert decoder.next_packet() == bytes(MAX_PACKET)
