"""Micro-benchmark of the jute codec: this tree (B) against a git revision (A).

    python tests/server/zk/bench_jute.py --base HEAD~1 [--rounds 15]

Why a script and not a test: timings belong in a report, not in a pass/fail
gate on a shared machine. A and B are two long-lived processes, each importing
one tree; for each case they take turns, one short timeit run (some 20 ms) at a
time, the order swapped every round (AB, BA, ...), so a busy machine slows both
alike. The report gives the medians over rounds and the median of the paired
ratios B/A (below 1.0: B is faster). Both sides first hash every byte they
encode, and the run stops if the wire bytes differ.
Only public names that both revisions have are used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def cases() -> dict[str, Callable[[], Any]]:
    """The measured calls: the port's hot paths (decode a request, encode a reply)."""
    from coord.messages import Stat
    from coord.server.zk import jute
    from coord.server.zk.jute import ACL, Id, ReplyHeader, RequestHeader, ZkOp

    stat = Stat(0x100000002, 0x100000003, 1_700_000_000_000, 1_700_000_000_500, 3, 2, 1,
                (200 << 56) | 7, 100, 2, 0x100000004)  # fmt: skip
    acl = [ACL(31, Id("world", "anyone")), ACL(1, Id("digest", "bob:Zm9vYmFyYmF6"))]
    create = jute.CreateRequest("/app/locks/lock-", b"x" * 64, acl, 3)
    create_packet = jute.encode_request(RequestHeader(7, ZkOp.CREATE), create)[4:]
    get = jute.PathWatchRequest("/app/config/node", True)
    get_packet = jute.encode_request(RequestHeader(8, ZkOp.GET_DATA), get)[4:]
    paths = [f"/app/service/member-{i:04d}" for i in range(20)]
    watches = jute.SetWatches(0x100000009, paths, paths[:5], paths[5:15])
    watches_packet = jute.encode_request(RequestHeader(-8, ZkOp.SET_WATCHES), watches)[4:]
    multi = jute.MultiRequest(
        (
            (ZkOp.CHECK, jute.CheckVersionRequest("/app/a", 3)),
            (ZkOp.CREATE, jute.CreateRequest("/app/b", b"v" * 32, acl, 0)),
            (ZkOp.SET_DATA, jute.SetDataRequest("/app/c", b"w" * 32, -1)),
            (ZkOp.DELETE, jute.DeleteRequest("/app/d", -1)),
        )
    )
    multi_packet = jute.encode_request(RequestHeader(9, ZkOp.MULTI), multi)[4:]
    results = jute.MultiResponse(
        (
            jute.OpResult(ZkOp.CHECK, 0, None),
            jute.OpResult(ZkOp.CREATE, 0, jute.CreateResponse("/app/b")),
            jute.OpResult(ZkOp.SET_DATA, 0, jute.StatResponse(stat)),
            jute.OpResult(ZkOp.DELETE, 0, None),
        )
    )
    data = b"d" * 100
    header = ReplyHeader(8, 0x100000005, 0)
    body = jute.GetDataResponse(data, stat)
    body_bytes = body.to_bytes()
    children = jute.GetChildren2Response(paths, stat)
    connect = jute.ConnectRequest(0, 0x100000001, 30_000, (200 << 56) | 1, b"p" * 16, False)
    connect_bytes = connect.to_bytes()
    return {
        "decode GetData request": lambda: jute.decode_request(get_packet),
        "decode Create request (2 ACLs)": lambda: jute.decode_request(create_packet),
        "decode SetWatches (35 paths)": lambda: jute.decode_request(watches_packet),
        "decode multi (4 ops)": lambda: jute.decode_request(multi_packet),
        "decode ConnectRequest": lambda: jute.ConnectRequest.from_bytes(connect_bytes),
        "decode GetDataResponse": lambda: jute.GetDataResponse.from_bytes(body_bytes),
        "encode GetData reply": lambda: jute.encode_reply(header, body),
        "build+encode GetData reply": lambda: jute.encode_reply(
            ReplyHeader(8, 0x100000005, 0), jute.GetDataResponse(data, stat)
        ),
        "encode GetChildren2 reply (20)": lambda: jute.encode_reply(header, children),
        "encode multi reply (4 results)": lambda: jute.encode_reply(header, results),
        "encode watch event": lambda: jute.encode_reply(
            ReplyHeader(-1, -1, 0), jute.WatcherEvent(3, 3, "/app/config/node")
        ),
        "encode Create request": lambda: jute.encode_request(RequestHeader(7, 1), create),
    }


def child() -> None:
    """Serve timing commands on stdin: `digest`, `calibrate NAME`, `time NAME NUMBER`."""
    calls = cases()
    for line in sys.stdin:
        command, *words = line.rstrip("\n").split("\t")
        if command == "digest":
            from coord.server.zk import jute

            digest = hashlib.sha256()
            for name, call in calls.items():
                value = call()
                digest.update(name.encode())
                digest.update(value if isinstance(value, bytes) else repr(value).encode())
            answer: Any = {"file": jute.__file__, "digest": digest.hexdigest()}
        elif command == "calibrate":
            answer = max(1, timeit.Timer(calls[words[0]]).autorange()[0] // 10)  # ~20 ms
        else:
            answer = timeit.Timer(calls[words[0]]).timeit(int(words[1]))
        print(json.dumps(answer), flush=True)


class Side:
    """A child process that imports one tree and times calls when asked."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child"], env=dict(os.environ, PYTHONPATH=str(tree)),
            cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def ask(self, *words: object) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\t".join(map(str, words)) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD", help="git revision for side A")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive = subprocess.run(
            ["git", "archive", args.base, "coord", "server"], cwd=ROOT, check=True,
            capture_output=True,
        ).stdout  # fmt: skip
        (base / "a.tar").write_bytes(archive)
        with tarfile.open(base / "a.tar") as tar:
            tar.extractall(base, filter="data")
        a, b = Side(base), Side(ROOT)
        try:
            report(a, b, args.rounds, args.base)
        finally:
            a.close()
            b.close()


def report(a: Side, b: Side, rounds: int, base: str) -> None:
    da, db = a.ask("digest"), b.ask("digest")
    for side, answer in ((a, da), (b, db)):
        if not answer["file"].startswith(str(side.tree)):
            raise SystemExit(f"imported {answer['file']}, not the tree under {side.tree}")
    if da["digest"] != db["digest"]:
        raise SystemExit("the two sides encoded different bytes")
    print(f"A = {base}, B = working tree; {rounds} interleaved rounds; median ns per call")
    print(f"{'case':34} {'A':>8} {'B':>8} {'B/A':>6}")
    for name in cases():
        number = b.ask("calibrate", name)
        times: dict[str, list[float]] = {"A": [], "B": []}
        ratios = []
        for round_no in range(rounds):
            order = [("A", a), ("B", b)] if round_no % 2 == 0 else [("B", b), ("A", a)]
            pair = {label: side.ask("time", name, number) for label, side in order}
            for label, seconds in pair.items():
                times[label].append(seconds / number * 1e9)
            ratios.append(pair["B"] / pair["A"])
        ma, mb = statistics.median(times["A"]), statistics.median(times["B"])
        print(f"{name:34} {ma:8.0f} {mb:8.0f} {statistics.median(ratios):6.2f}")


if __name__ == "__main__":
    main()
