"""Peak RSS of a server under the slow-reader attack: many gets of a 1 MiB node, never read.

Starts `python -m coord.server` as a subprocess on free ports (no fsync, a temporary
data directory), creates one 1 MiB node, then opens a connection that sends
`--gets` pipelined get_data requests for it and never reads a byte. It waits
until the server closes that connection (or `--wait` seconds pass), samples
the server's VmRSS while waiting, and prints its VmHWM (peak RSS) from
/proc/<pid>/status, before and after the attack.

    python benchmarks/unread_replies.py --gets 1100
    python benchmarks/unread_replies.py --gets 800 --zk   # on the ZooKeeper port
"""

from __future__ import annotations

import argparse
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from coord.messages import PROTOCOL_VERSION, OpCode

DATA = b"x" * (1024 * 1024 - 64)


def _status(pid: int, key: str) -> int:
    """A /proc/<pid>/status field in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _frame(message: object) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def _read_frame(sock: socket.socket) -> object:
    header = _recv_exactly(sock, 4)
    return msgpack.unpackb(_recv_exactly(sock, struct.unpack(">I", header)[0]), raw=False)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise EOFError("server closed")
        out += chunk
    return bytes(out)


def _native_session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    hello = {
        "protocol_version": PROTOCOL_VERSION,
        "timeout_ms": 30000,
        "session_id": 0,
        "password": b"",
        "last_zxid_seen": 0,
    }
    sock.sendall(_frame(hello))
    _read_frame(sock)
    return sock


def _zk_session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    # ConnectRequest: protocol 0, last zxid 0, timeout 30000, session 0, 16-byte password.
    body = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\x00"
    sock.sendall(struct.pack(">i", len(body)) + body)
    length = struct.unpack(">i", _recv_exactly(sock, 4))[0]
    _recv_exactly(sock, length)
    return sock


def _zk_get(xid: int, path: str) -> bytes:
    raw = path.encode()
    body = struct.pack(">ii", xid, 4) + struct.pack(">i", len(raw)) + raw + b"\x00"
    return struct.pack(">i", len(body)) + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=1100)
    parser.add_argument("--zk", action="store_true", help="attack the ZooKeeper port")
    parser.add_argument("--wait", type=float, default=60.0, help="give up after this long")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "coord.server", "--port", "0", "--zk-port", "0", "--no-fsync",
             "--data-dir", str(Path(tmp) / "data"), "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            native_line = server.stdout.readline().decode()
            zk_line = server.stdout.readline().decode()
            port = int(native_line.rsplit(":", 1)[1])
            zk_port = int(zk_line.rsplit(":", 1)[1])
            setup = _native_session(port)
            setup.sendall(_frame([1, OpCode.CREATE, {"path": "/big", "data": DATA}]))
            _read_frame(setup)
            before = _status(server.pid, "VmHWM")
            attacker = _zk_session(zk_port) if args.zk else _native_session(port)
            if args.zk:
                burst = b"".join(_zk_get(10 + i, "/big") for i in range(args.gets))
            else:
                get = OpCode.GET_DATA
                burst = b"".join(_frame([10 + i, get, {"path": "/big"}]) for i in range(args.gets))
            started = time.monotonic()
            attacker.sendall(burst)
            closed = _wait_closed(attacker, started + args.wait)
            peak = _status(server.pid, "VmHWM")
            where = "ZooKeeper" if args.zk else "native"
            print(f"gets: {args.gets} x {len(DATA)} bytes on the {where} port")
            print(f"peak RSS before the attack: {before / 1024:.1f} MiB")
            print(f"peak RSS after the attack:  {peak / 1024:.1f} MiB")
            print(f"connection closed by the server: {closed} ({time.monotonic() - started:.1f} s)")
            setup.sendall(_frame([2, OpCode.EXISTS, {"path": "/big"}]))
            print(f"server healthy afterwards: {isinstance(_read_frame(setup), list)}")
        finally:
            server.terminate()
            server.wait()
    return 0


def _wait_closed(sock: socket.socket, deadline: float) -> bool:
    """Wait, without reading, until the server closes the connection (its FIN arrives)."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    while time.monotonic() < deadline:
        if poller.poll(50):
            return True
    return False


if __name__ == "__main__":
    raise SystemExit(main())
