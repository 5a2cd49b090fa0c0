"""The four-letter words' text, from a ServerInfo (no server needed)."""

from __future__ import annotations

from coord.server.zk.fourletter import NOT_SERVING, ConnectionInfo, ServerInfo, answer

INFO = ServerInfo(
    version="3.8.0-coord-0.1.0",
    mode="follower",
    serving=True,
    zxid=0x100000007,
    node_count=12,
    watches=3,
    watched_paths=2,
    watching_connections=1,
    received=40,
    sent=41,
    connections=(
        ConnectionInfo("127.0.0.1:5000", 0x1ABC, 10, 11, 2),
        ConnectionInfo("127.0.0.1", protocol="native"),
    ),
    environment=(("host.name", "h"),),
    config=(("clientPort", "2181"), ("tickTime", "2000")),
)


def test_srvr_and_stat() -> None:
    srvr = answer("srvr", INFO)
    assert srvr.splitlines() == [
        "Zookeeper version: 3.8.0-coord-0.1.0",
        "Latency min/avg/max: 0/0.0/0",
        "Received: 40",
        "Sent: 41",
        "Connections: 2",
        "Outstanding: 2",
        "Zxid: 0x100000007",
        "Mode: follower",
        "Node count: 12",
    ]
    stat = answer("stat", INFO)
    assert " /127.0.0.1:5000[1](queued=2,recved=10,sent=11,sid=0x1abc,protocol=zookeeper)" in stat


def test_the_other_words() -> None:
    assert answer("ruok", INFO) == "imok"
    assert answer("isro", INFO) == "rw"
    assert (
        answer("envi", INFO) == "Environment:\nzookeeper.version=3.8.0-coord-0.1.0\nhost.name=h\n"
    )
    assert answer("conf", INFO) == "clientPort=2181\ntickTime=2000\n"
    assert answer("wchs", INFO) == "1 connections watching 2 paths\nTotal watches:3\n"
    assert answer("cons", INFO).count("\n") == 3
    mntr = dict(line.split("\t") for line in answer("mntr", INFO).splitlines())
    assert mntr["zk_server_state"] == "follower" and mntr["zk_znode_count"] == "12"
    assert answer("crst", INFO) == "crst is not executed because it is not in the whitelist.\n"


def test_a_member_that_is_not_serving_says_so() -> None:
    idle = ServerInfo(version="v", mode="looking", serving=False)
    assert answer("ruok", idle) == "imok"
    assert answer("isro", idle) == "null"
    for word in ("srvr", "stat", "mntr", "cons", "wchs"):
        assert answer(word, idle) == NOT_SERVING
    assert answer("envi", idle).startswith("Environment:")
