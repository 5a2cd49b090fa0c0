"""The ZooKeeper port over real sockets, byte for byte: four-letter words, limits, sessions."""

from __future__ import annotations

import struct

import pytest
import trio

from coord.client import Client
from coord.server.zk import jute
from coord.server.zk.jute import MAX_PACKET, PathWatchRequest, ZkOp
from tests.conftest import RunningServer
from tests.server.zk.jute_client import OPEN_ACL, RawZk, four_letter_word


async def test_ruok_isro_srvr_stat(zk_server: RunningServer) -> None:
    port = zk_server.zk_port
    assert await four_letter_word(port, "ruok") == "imok"
    assert await four_letter_word(port, "isro") == "rw"
    srvr = await four_letter_word(port, "srvr")
    assert srvr.startswith("Zookeeper version: 3.8.0-coord")
    assert "Mode: standalone\n" in srvr and "Node count: 1\n" in srvr
    client, _ = await RawZk.connect(port)
    stat = await four_letter_word(port, "stat")
    assert "Clients:\n /127.0.0.1:" in stat and f"sid={client.session_id:#x}" in stat
    await client.aclose()


async def test_envi_conf_mntr_cons_wchs(zk_server: RunningServer) -> None:
    port = zk_server.zk_port
    envi = await four_letter_word(port, "envi")
    assert envi.startswith("Environment:\nzookeeper.version=3.8.0-coord")
    assert "python.version=" in envi
    conf = await four_letter_word(port, "conf")
    assert f"clientPort={port}\n" in conf and "tickTime=100\n" in conf
    assert "minSessionTimeout=200\n" in conf and "maxSessionTimeout=40000\n" in conf
    client, _ = await RawZk.connect(port)
    await client.call(ZkOp.CREATE, jute.CreateRequest("/w", b"", OPEN_ACL, 0))
    await client.call(ZkOp.GET_DATA, PathWatchRequest("/w", True))
    await client.call(ZkOp.GET_CHILDREN, PathWatchRequest("/", True))
    mntr = dict(line.split("\t", 1) for line in (await four_letter_word(port, "mntr")).splitlines())
    assert mntr["zk_server_state"] == "standalone"
    assert mntr["zk_znode_count"] == "2" and mntr["zk_watch_count"] == "2"
    assert mntr["zk_version"].startswith("3.8.0")
    assert (
        await four_letter_word(port, "wchs")
    ) == "1 connections watching 2 paths\nTotal watches:2\n"
    cons = await four_letter_word(port, "cons")
    assert f"sid={client.session_id:#x}" in cons
    assert await four_letter_word(port, "dump") == (
        "dump is not executed because it is not in the whitelist.\n"
    )
    await client.aclose()


async def test_unknown_op_is_unimplemented_and_the_session_stays_open(
    zk_server: RunningServer,
) -> None:
    client, _ = await RawZk.connect(zk_server.zk_port)
    header, _ = await client.call(999)
    assert header.err == -6
    header, _ = await client.call(ZkOp.RECONFIG, jute.ReconfigRequest("", "", "", -1))
    assert header.err == -123
    header, stat = await client.call(ZkOp.EXISTS, PathWatchRequest("/", False))
    assert header.err == 0 and stat is not None
    await client.aclose()


async def _healthy(server: RunningServer) -> None:
    client, response = await RawZk.connect(server.zk_port)
    assert response is not None and response.session_id
    header, _ = await client.call(ZkOp.CREATE, jute.CreateRequest("/after", b"", OPEN_ACL, 1))
    assert header.err == 0
    await client.aclose()
    async with Client(server.hosts, session_timeout=2, request_timeout=5) as native:
        assert await native.exists("/") is not None


async def test_a_packet_over_one_mib_closes_the_connection(zk_server: RunningServer) -> None:
    client, _ = await RawZk.connect(zk_server.zk_port)
    await client.send_raw(struct.pack(">i", MAX_PACKET + 1) + bytes(1024))
    assert await client.is_closed()
    # A packet of exactly the limit is fine; its data is then over the data limit.
    client, _ = await RawZk.connect(zk_server.zk_port)
    overhead = len(
        jute.encode_request(jute.RequestHeader(1, ZkOp.SET_DATA), jute.SetDataRequest("/", b"", -1))
    )
    body = jute.SetDataRequest("/", bytes(MAX_PACKET - overhead + 4), -1)
    packet = jute.encode_request(jute.RequestHeader(1, ZkOp.SET_DATA), body)
    assert len(packet) == MAX_PACKET + 4
    await client.send_raw(packet)
    header, _ = await client.reply()
    assert header.xid == 1 and header.err in (0, -8)
    await client.aclose()
    await _healthy(zk_server)


async def test_a_malformed_packet_closes_the_connection(zk_server: RunningServer) -> None:
    client, _ = await RawZk.connect(zk_server.zk_port)
    await client.send_raw(jute.frame(jute.RequestHeader(1, ZkOp.GET_DATA).to_bytes() + b"\x00"))
    assert await client.is_closed()
    await _healthy(zk_server)


async def test_session_resumes_on_a_new_connection_and_expired_ones_are_refused(
    zk_server: RunningServer,
) -> None:
    first, response = await RawZk.connect(zk_server.zk_port)
    assert response is not None and response.timeout_ms == 2000
    await first.call(ZkOp.CREATE, jute.CreateRequest("/mine", b"", OPEN_ACL, 1))
    second, again = await RawZk.connect(
        zk_server.zk_port, session_id=first.session_id, password=first.password
    )
    assert again is not None and again.session_id == first.session_id
    assert await first.is_closed()  # the session moved
    header, stat = await second.call(ZkOp.EXISTS, PathWatchRequest("/mine", False))
    assert header.err == 0 and stat.stat.ephemeral_owner == first.session_id
    wrong, refused = await RawZk.connect(
        zk_server.zk_port, session_id=first.session_id, password=bytes(16)
    )
    assert refused is not None and (refused.timeout_ms, refused.session_id) == (0, 0)
    assert await wrong.is_closed()
    _future, nothing = await RawZk.connect(zk_server.zk_port, last_zxid=1 << 50)
    assert nothing is None  # a client that has seen a newer zxid is refused
    header, _ = await second.call(ZkOp.CLOSE_SESSION)
    assert header.err == 0 and await second.is_closed()


async def test_auth_failure_answers_then_closes(zk_server: RunningServer) -> None:
    client, _ = await RawZk.connect(zk_server.zk_port)
    await client.send(ZkOp.AUTH, jute.AuthPacket(0, "digest", b"u:p"), xid=-4)
    header, _ = await client.reply()
    assert (header.xid, header.err) == (-4, 0)
    header, who = await client.call(ZkOp.WHO_AM_I)
    assert [i.auth_scheme for i in who.client_info] == ["ip", "digest"]
    await client.send(ZkOp.AUTH, jute.AuthPacket(0, "nonsense", b"x"), xid=-4)
    header, _ = await client.reply()
    assert (header.xid, header.err) == (-4, -115)
    assert await client.is_closed()


async def test_replies_keep_request_order_under_pipelining(zk_server: RunningServer) -> None:
    client, _ = await RawZk.connect(zk_server.zk_port)
    await client.call(ZkOp.CREATE, jute.CreateRequest("/p", b"", OPEN_ACL, 0))
    sent = []
    for i in range(50):
        sent.append(await client.send(ZkOp.CREATE, jute.CreateRequest("/p/n-", b"", OPEN_ACL, 2)))
        sent.append(await client.send(ZkOp.WHO_AM_I))
        sent.append(await client.send(ZkOp.GET_CHILDREN, PathWatchRequest("/p", False)))
        sent.append(await client.send(1000 + i))
    got = []
    with trio.fail_after(10):
        for _ in sent:
            header, _ = await client.reply()
            got.append(header.xid)
    assert got == sent
    await client.aclose()


@pytest.mark.parametrize("word", ["srvr", "mntr", "cons", "wchs", "stat"])
async def test_four_letter_words_are_not_sessions(zk_server: RunningServer, word: str) -> None:
    await four_letter_word(zk_server.zk_port, word)
    assert zk_server.server.core is not None
    assert not zk_server.server.core.tree.sessions
