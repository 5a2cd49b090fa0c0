"""A 3-member ensemble as real processes, attacked at its peer ports: writes still commit.

Attack A as it was seen: `{"hello": <leader id>}` then a LeaderInfo with an
epoch past 32 bits at every follower's peer port, then the leader dies. Before,
the next leader died proposing and the bad epoch was already in the epochs
file. Then, with a secret: garbage, forged hellos and wrong proofs at every
member's peer port.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import trio

from coord.client import Client
from coord.framing import encode_frame, encode_frames
from tests.ensemble_procs import ProcessEnsemble

SECRET = "peer-port-test-secret-0123456789"


def _peer_ports(ensemble: ProcessEnsemble) -> dict[int, int]:
    text = ensemble.config.read_text()
    ports = [int(line.split("=")[1]) for line in text.splitlines() if line.startswith("peer_port")]
    return dict(zip(range(1, len(ports) + 1), ports, strict=True))


def _epochs(root: Path, member_id: int) -> tuple[int, int]:
    accepted, current = (root / str(member_id) / "epochs").read_text().split()
    return int(accepted), int(current)


async def _send(port: int, data: bytes) -> None:
    """Send `data` and wait (bounded) for the member to close the connection."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return
    try:
        await stream.send_all(data)
        with trio.move_on_after(5):
            while await stream.receive_some(65536):
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await stream.aclose()


async def _write_and_read(hosts: str, path: str) -> None:
    async with Client(hosts, session_timeout=4, request_timeout=15) as zk:
        await zk.create(path, b"still-committing")
        await zk.sync(path)
        assert (await zk.get(path))[0] == b"still-committing"


async def test_attack_a_a_forged_leader_info_past_32_bits_kills_nobody(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        ports = _peer_ports(ensemble)
        forged = encode_frames([{"hello": leader}, [3, 2**32 + 5], [3, 2**32 + 5]])
        for member in (1, 2, 3):
            if member != leader:
                await _send(ports[member], forged)
        await ensemble.kill(leader)
        await ensemble.wait_for_leader(not_this=leader)
        await _write_and_read(ensemble.hosts, "/after-attack-a")
        await ensemble.start(leader)
        await ensemble.wait_serving(leader)
        for member in (1, 2, 3):
            accepted, current = _epochs(tmp_path, member)
            assert accepted < 1000 and current < 1000, (member, accepted, current)
    finally:
        await ensemble.stop_all()


async def test_garbage_and_forgeries_at_every_peer_port_with_a_secret(tmp_path):
    ensemble = ProcessEnsemble(tmp_path)
    text = ensemble.config.read_text()
    ensemble.config.write_text(text.replace("[ensemble]\n", f'[ensemble]\nsecret = "{SECRET}"\n'))
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        ports = _peer_ports(ensemble)
        rng = random.Random(7)
        attacks = [
            os.urandom(0) + bytes(rng.getrandbits(8) for _ in range(2000)),
            (300_000_000).to_bytes(4, "big") + b"\0" * 65536,
            encode_frames([{"hello": leader}, [3, 2**32 + 5]]),  # the old forgery
            encode_frames([{"hello": leader}, [3, 999999]]),
            encode_frames([{"hello": leader, "nonce": b"n" * 32}, {"proof": b"p" * 32}, [3, 9]]),
            encode_frame({"hello": 77, "nonce": b"n" * 32}),
            encode_frame([3, 5]),
        ]
        async with trio.open_nursery() as nursery:
            for port in ports.values():
                for attack in attacks:
                    nursery.start_soon(_send, port, attack)
        await _write_and_read(ensemble.hosts, "/after-garbage")
        assert ensemble.leader() == leader, "the attacks did not cost the leader its place"
        for member in (1, 2, 3):
            assert _epochs(tmp_path, member)[0] < 1000
            log = (tmp_path / f"member-{member}.log").read_text()
            assert "dropping a peer connection from unauthenticated" in log
    finally:
        await ensemble.stop_all()
