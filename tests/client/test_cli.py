"""The `coord` command line: parsing and formatting alone, then every command
run in-process (coord.client.cli.run with StringIO streams) against a real server,
the shell fed from a StringIO, and the console script as a real process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from coord.client import Client, ClientState, cli
from coord.client.cli import (
    COMMANDS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    build_shell_parser,
    run,
    shell_help,
)
from coord.client.cli_format import (
    format_data,
    format_error,
    format_event,
    format_stat,
    format_time_ms,
    format_tree,
)
from coord.errors import BadVersionError, NoNodeError
from coord.messages import EventType, Stat, WatchedEvent

STAT = Stat(
    czxid=0x100000002,
    mzxid=0x100000005,
    ctime=1_700_000_000_000,
    mtime=1_700_000_000_500,
    version=3,
    cversion=1,
    aversion=0,
    ephemeral_owner=0xABC,
    data_length=5,
    num_children=2,
    pzxid=0x100000004,
)


class Result:
    """What one `coord` run left behind: exit status, stdout and stderr."""

    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc = rc
        self.out = out
        self.err = err

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


async def coord(*argv: str, stdin: str = "") -> Result:
    """Run the CLI in-process with captured streams."""
    out, err = io.StringIO(), io.StringIO()
    rc = await run(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Result(rc, out.getvalue(), err.getvalue())


async def wait_for_text(stream: io.StringIO, text: str, timeout: float = 5.0) -> None:
    """Poll a captured stream until `text` shows up (how a test learns a watch is set)."""
    with trio.fail_after(timeout):
        while text not in stream.getvalue():
            await trio.sleep(0.01)


# --------------------------------------------------------------------------
# Parsing.


def test_global_options_and_command() -> None:
    args = build_parser().parse_args(["-s", "h:1", "--timeout", "3", "get", "/a", "-w"])
    assert (args.server, args.timeout, args.command, args.path, args.watch) == (
        "h:1",
        3.0,
        "get",
        "/a",
        True,
    )


def test_no_command_means_shell() -> None:
    assert build_parser().parse_args([]).command is None
    assert build_parser().parse_args(["shell"]).command == "shell"


def test_create_flags_may_sit_between_path_and_data() -> None:
    args = build_parser().parse_args(["create", "/a", "-e", "some data", "-s"])
    assert (args.path, args.data, args.ephemeral, args.sequential) == (
        "/a",
        "some data",
        True,
        True,
    )
    args = build_parser().parse_args(["create", "-c", "--ttl", "2.5", "-p", "/b"])
    assert (args.path, args.data, args.container, args.ttl, args.makepath) == (
        "/b",
        "",
        True,
        2.5,
        True,
    )


def test_version_and_recursive_flags() -> None:
    args = build_parser().parse_args(["set", "/a", "-v", "4", "x"])
    assert (args.path, args.data, args.version) == ("/a", "x", 4)
    args = build_parser().parse_args(["delete", "-r", "/a"])
    assert (args.recursive, args.version) == (True, -1)
    args = build_parser().parse_args(["rm", "/a", "-v", "2"])
    assert (args.command, args.version) == ("rm", 2)


def test_watch_flags() -> None:
    args = build_parser().parse_args(["watch", "/a", "-r", "--count", "3"])
    assert (args.recursive, args.count) == (True, 3)
    assert build_parser().parse_args(["watch", "/a"]).count == 0


def test_bench_flags() -> None:
    args = build_parser().parse_args(
        ["bench", "--clients", "8", "--outstanding", "32", "--ops", "100", "--json"]
    )
    assert (args.clients, args.outstanding, args.ops, args.duration, args.json) == (
        8,
        32,
        100,
        None,
        True,
    )


def test_shell_parser_has_every_command() -> None:
    parser = build_shell_parser()
    for command in COMMANDS:
        assert f"  {command.name} " in shell_help()
    assert parser.parse_args(["tree"]).path == "/"


async def test_usage_errors_exit_2_without_a_server() -> None:
    for argv in (["bogus"], ["set", "/a"], ["get"], ["ls", "/a", "--nope"], ["--timeout", "x"]):
        result = await coord(*argv)
        assert result.rc == EXIT_USAGE, (argv, result)
        assert result.out == ""
        assert "usage: coord" in result.err
        assert result.err.rstrip().splitlines()[-1].startswith("coord: ")


async def test_help_goes_to_the_given_stdout() -> None:
    result = await coord("-h")
    assert result.rc == EXIT_OK
    assert "usage: coord" in result.out
    result = await coord("create", "-h")
    assert result.rc == EXIT_OK
    assert "--ephemeral" in result.out


async def test_bad_bench_settings_are_usage_errors() -> None:
    for argv in (
        ["bench", "--workloads", "create,nope"],
        ["bench", "--ops", "0"],
        ["bench", "--clients", "0"],
        ["bench", "--ops", "5", "--duration", "1"],
    ):
        result = await coord("-s", "127.0.0.1:1", *argv)
        assert result.rc == EXIT_USAGE, (argv, result)


# --------------------------------------------------------------------------
# Formatting.


def test_format_data() -> None:
    assert format_data(b"hello") == "hello"
    assert format_data("grüße".encode()) == "grüße"
    assert format_data(b"") == ""
    assert format_data(b"\xff\x00a") == "b'\\xff\\x00a'"


def test_format_stat_shows_every_field_in_order() -> None:
    lines = format_stat(STAT)
    assert [line.split(" = ")[0] for line in lines] == list(Stat._fields)
    fields = dict(line.split(" = ", 1) for line in lines)
    assert fields["czxid"] == "0x100000002"
    assert int(fields["pzxid"], 0) == STAT.pzxid
    assert fields["ephemeral_owner"] == "0xabc"
    assert fields["version"] == "3"
    assert fields["num_children"] == "2"
    assert fields["ctime"] == "1700000000000 (2023-11-14T22:13:20.000Z)"


def test_format_time_ms() -> None:
    assert format_time_ms(0) == "1970-01-01T00:00:00.000Z"
    assert format_time_ms(1_500) == "1970-01-01T00:00:01.500Z"


def test_format_event() -> None:
    event = WatchedEvent(EventType.CHANGED, "/a/b", 0x100000007)
    assert format_event(event) == "CHANGED /a/b 0x100000007"


def test_format_tree() -> None:
    entries = [(1, "a"), (2, "b"), (3, "c"), (1, "d")]
    assert format_tree("/x", entries) == ["/x", "  a", "    b", "      c", "  d"]
    assert format_tree("/", []) == ["/"]


def test_format_error_names_class_path_and_values() -> None:
    assert format_error(NoNodeError("node '/a' does not exist", path="/a")) == (
        "NoNodeError: node '/a' does not exist"
    )
    assert format_error(NoNodeError("gone", path="/a")) == "NoNodeError: gone (path /a)"
    text = format_error(BadVersionError("mismatch", path="/a", expected=1, actual=2))
    assert text == "BadVersionError: mismatch (path /a, expected 1, actual 2)"
    assert format_error(OSError("connection\nrefused")) == "connection refused"


# --------------------------------------------------------------------------
# One-shot commands against a real server.


async def test_create_get_set_delete(coord_server) -> None:
    s = coord_server.hosts
    assert (await coord("-s", s, "create", "/a", "hello world")).lines == ["/a"]
    assert (await coord("-s", s, "get", "/a")).out == "hello world\n"

    result = await coord("-s", s, "set", "/a", "v2", "-v", "0", "--stat")
    assert result.rc == EXIT_OK
    assert "version = 1" in result.lines
    assert (await coord("-s", s, "get", "/a")).out == "v2\n"

    result = await coord("-s", s, "set", "/a", "v3", "-v", "0")
    assert result.rc == EXIT_FAILED
    assert result.out == ""
    assert result.err.startswith("coord: BadVersionError: ")
    assert "/a" in result.err and "expected 0" in result.err and "actual 1" in result.err
    assert len(result.err.splitlines()) == 1

    assert (await coord("-s", s, "delete", "/a", "-v", "1")).rc == EXIT_OK
    result = await coord("-s", s, "get", "/a")
    assert result.rc == EXIT_FAILED
    assert result.err == "coord: NoNodeError: node '/a' does not exist\n"


async def test_get_prints_binary_data_as_repr_and_stat(coord_server) -> None:
    async with Client(coord_server.hosts) as zk:
        await zk.create("/bin", b"\xff\x00")
    result = await coord("-s", coord_server.hosts, "get", "-s", "/bin")
    assert result.lines[0] == "b'\\xff\\x00'"
    assert "data_length = 2" in result.lines


async def test_ls_prints_one_child_per_line(coord_server) -> None:
    s = coord_server.hosts
    for name in ("b", "a", "c d"):
        assert (await coord("-s", s, "create", "-p", f"/dir/{name}")).rc == EXIT_OK
    result = await coord("-s", s, "ls", "/dir")
    assert result.lines == ["a", "b", "c d"]
    assert (await coord("-s", s, "ls", "/dir/a")).out == ""
    result = await coord("-s", s, "ls", "/nowhere")
    assert result.rc == EXIT_FAILED
    assert "/nowhere" in result.err


async def test_create_modes(coord_server) -> None:
    s = coord_server.hosts
    result = await coord("-s", s, "create", "-s", "/seq-", "x")
    assert re.fullmatch(r"/seq-\d{10}", result.out.strip())
    # An ephemeral node of a one-shot command dies with the command's session.
    assert (await coord("-s", s, "create", "-e", "/eph")).rc == EXIT_OK
    assert (await coord("-s", s, "stat", "/eph")).rc == EXIT_FAILED
    assert (await coord("-s", s, "create", "-c", "/box")).rc == EXIT_OK
    assert (await coord("-s", s, "create", "--ttl", "60", "/ttl")).rc == EXIT_OK
    result = await coord("-s", s, "create", "/no/parent")
    assert result.rc == EXIT_FAILED and "NoNodeError" in result.err
    assert (await coord("-s", s, "create", "-p", "/no/parent", "deep")).rc == EXIT_OK
    assert (await coord("-s", s, "get", "/no/parent")).out == "deep\n"
    result = await coord("-s", s, "create", "/box")
    assert result.rc == EXIT_FAILED and "NodeExistsError" in result.err and "/box" in result.err
    result = await coord("-s", s, "create", "-e", "-c", "/bad")
    assert result.rc == EXIT_FAILED and "BadArgumentsError" in result.err


async def test_delete_recursive(coord_server) -> None:
    s = coord_server.hosts
    await coord("-s", s, "create", "-p", "/r/a/b")
    result = await coord("-s", s, "delete", "/r")
    assert result.rc == EXIT_FAILED and "NotEmptyError" in result.err
    assert (await coord("-s", s, "delete", "-r", "/r")).rc == EXIT_OK
    assert (await coord("-s", s, "stat", "/r")).rc == EXIT_FAILED


async def test_stat_shows_every_field(coord_server) -> None:
    s = coord_server.hosts
    await coord("-s", s, "create", "/st", "12345")
    await coord("-s", s, "create", "/st/kid")
    result = await coord("-s", s, "stat", "/st")
    assert result.rc == EXIT_OK
    fields = dict(line.split(" = ", 1) for line in result.lines)
    assert list(fields) == list(Stat._fields)
    assert (fields["data_length"], fields["num_children"], fields["version"]) == ("5", "1", "0")
    assert fields["ephemeral_owner"] == "0x0"
    result = await coord("-s", s, "stat", "/missing")
    assert result.rc == EXIT_FAILED
    assert result.err == "coord: NoNodeError: node '/missing' does not exist\n"


async def test_tree(coord_server) -> None:
    s = coord_server.hosts
    for path in ("/t/a/x", "/t/a/y", "/t/b"):
        await coord("-s", s, "create", "-p", path)
    result = await coord("-s", s, "tree", "/t")
    assert result.lines == ["/t", "  a", "    x", "    y", "  b"]
    result = await coord("-s", s, "tree")
    assert result.lines[0] == "/"
    assert "  t" in result.lines
    assert (await coord("-s", s, "tree", "/none")).rc == EXIT_FAILED


async def test_sync(coord_server) -> None:
    result = await coord("-s", coord_server.hosts, "sync", "/")
    assert (result.rc, result.out) == (EXIT_OK, "")


async def test_server_from_environment(coord_server, monkeypatch) -> None:
    monkeypatch.setenv("COORD_SERVER", coord_server.hosts)
    assert (await coord("create", "/env")).lines == ["/env"]


async def test_unreachable_server_fails_with_one_line(coord_server) -> None:
    # Port 1 on loopback refuses connections.
    result = await coord("-s", "127.0.0.1:1", "--timeout", "0.5", "ls", "/")
    assert result.rc == EXIT_FAILED
    assert result.err.startswith("coord: ConnectionLossError: could not connect to 127.0.0.1:1")
    assert len(result.err.splitlines()) == 1


class Background:
    """A CLI run in a background task; its streams can be read while it runs."""

    def __init__(self, nursery: trio.Nursery, argv: list[str]) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.rc: int | None = None
        self._done = trio.Event()
        nursery.start_soon(self._run, argv)

    async def _run(self, argv: list[str]) -> None:
        self.rc = await run(argv, stdin=io.StringIO(), stdout=self.out, stderr=self.err)
        self._done.set()

    async def wait(self, timeout: float = 5.0) -> int:
        with trio.fail_after(timeout):
            await self._done.wait()
        assert self.rc is not None
        return self.rc


async def test_watch_prints_events_until_count(coord_server, nursery) -> None:
    s = coord_server.hosts
    watch = Background(nursery, ["-s", s, "watch", "/w", "-r", "--count", "3"])
    await wait_for_text(watch.err, "watching /w and its subtree")
    async with Client(s) as zk:
        await zk.create("/w")
        await zk.create("/w/k", b"1")
        await zk.set("/w/k", b"2")
        await zk.create("/elsewhere")
    assert await watch.wait() == EXIT_OK
    events = [line.split() for line in watch.out.getvalue().splitlines()]
    assert [e[:2] for e in events] == [["CREATED", "/w"], ["CREATED", "/w/k"], ["CHANGED", "/w/k"]]
    zxids = [int(e[2], 0) for e in events]
    assert zxids == sorted(zxids) and len(set(zxids)) == 3


async def test_ls_watch_waits_for_the_event(coord_server, nursery) -> None:
    s = coord_server.hosts
    await coord("-s", s, "create", "/lw")
    ls = Background(nursery, ["-s", s, "ls", "-w", "/lw"])
    await wait_for_text(ls.err, "waiting for the watch")
    await coord("-s", s, "create", "/lw/new")
    assert await ls.wait() == EXIT_OK
    assert ls.out.getvalue().splitlines()[0].startswith("CHILD /lw 0x")


@pytest.mark.parametrize(
    ("argv", "text", "expected"),
    [
        (["watch", "/cc"], "watching /cc", EXIT_OK),
        (["get", "-w", "/"], "waiting for the watch", EXIT_INTERRUPTED),
    ],
)
async def test_ctrl_c_ends_watch_with_0_and_other_commands_with_130(
    coord_server, nursery, argv: list[str], text: str, expected: int
) -> None:
    command = Background(nursery, ["-s", coord_server.hosts, *argv])
    await wait_for_text(command.err, text)
    os.kill(os.getpid(), signal.SIGINT)  # the command's own signal receiver takes it
    assert await command.wait() == expected, command.err.getvalue()


# --------------------------------------------------------------------------
# The shell.


async def test_shell_runs_commands_over_one_session(coord_server) -> None:
    script = "\n".join(
        [
            "# a comment, then a blank line",
            "",
            "create /sh 'two words'",
            "get /sh",
            "ls -w /sh",
            "create -e /sh/kid",
            "ls /sh",
            "stat /sh",
            "quit",
            "get /sh",  # never reached
        ]
    )
    result = await coord("-s", coord_server.hosts, stdin=script)
    assert result.rc == EXIT_OK, result
    assert result.err == ""
    lines = result.lines
    assert lines[:2] == ["/sh", "two words"]
    # The child watch fires before the reply of the create that fired it.
    assert lines[2].startswith("WATCHER:: CHILD /sh 0x")
    assert lines[3:5] == ["/sh/kid", "kid"]  # the ephemeral lives with the shell's session
    assert "num_children = 1" in lines
    assert lines.count("two words") == 1
    # The shell's session is closed: its ephemerals are gone.
    assert (await coord("-s", coord_server.hosts, "ls", "/sh")).out == ""


async def test_shell_keeps_going_after_errors_and_exits_1(coord_server) -> None:
    script = "get /missing\nbogus\nls /\nset /x\n'unbalanced\ncreate /after\n"
    result = await coord("-s", coord_server.hosts, "shell", stdin=script)
    assert result.rc == EXIT_FAILED
    assert "coord: NoNodeError: node '/missing' does not exist" in result.err
    assert "invalid choice: 'bogus'" in result.err
    assert "the following arguments are required: data" in result.err
    assert "cannot split the line" in result.err
    assert result.lines[-1] == "/after"


async def test_shell_help_and_end_of_input(coord_server) -> None:
    result = await coord("-s", coord_server.hosts, stdin="help\nhelp create\n")
    assert result.rc == EXIT_OK
    assert "commands (COMMAND -h for its options):" in result.out
    assert "usage: coord create" in result.out
    result = await coord("-s", coord_server.hosts, stdin="")
    assert (result.rc, result.out) == (EXIT_OK, "")


async def test_shell_opens_a_new_session_when_its_session_is_lost(monkeypatch) -> None:
    """A lost (expired) session is final; the shell says so and carries on with a new one."""
    sessions: list[FakeSession] = []

    class FakeSession:
        def __init__(self) -> None:
            self.state = ClientState.CONNECTED

        async def get_children(self, path: str, watch: object = None) -> list[str]:
            await trio.lowlevel.checkpoint()
            self.state = ClientState.LOST  # as if it expired right after this reply
            return [f"session-{len(sessions)}"]

    @asynccontextmanager
    async def fake_connect(ctx: object) -> AsyncIterator[FakeSession]:
        sessions.append(FakeSession())
        yield sessions[-1]

    monkeypatch.setattr(cli, "connect", fake_connect)
    result = await coord(stdin="ls /\nls /\n")
    assert result.rc == EXIT_OK, result
    assert result.lines == ["session-1", "session-2"]
    assert result.err == "coord: the session was lost; opening a new one\n"


async def test_shell_needs_a_server(coord_server) -> None:
    result = await coord("-s", "127.0.0.1:1", "--timeout", "0.3", stdin="ls /\n")
    assert result.rc == EXIT_FAILED
    assert "could not connect" in result.err


# --------------------------------------------------------------------------
# The console script, as a user runs it.


@pytest.mark.slow
async def test_console_script_against_a_server_process(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    coord_script = bin_dir / "coord"
    server_script = bin_dir / "coord-server"
    if not coord_script.exists() or not server_script.exists():
        pytest.skip("the console scripts are not installed next to this Python")
    server = await trio.lowlevel.open_process(
        [str(server_script), "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        buffer = b""
        with trio.fail_after(30):
            while b"\n" not in buffer:
                chunk = await server.stdout.receive_some(4096)
                assert chunk, "coord-server exited before it was listening"
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        match = re.search(r"listening on (\S+:\d+)", line)
        assert match, line
        hosts = match.group(1)

        async def coord_process(*argv: str) -> subprocess.CompletedProcess[bytes]:
            with trio.fail_after(30):
                return await trio.run_process(
                    [str(coord_script), "-s", hosts, *argv],
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    cwd=tmp_path,  # far from the source tree: the installed package is used
                )

        created = await coord_process("create", "/proc", "from a process")
        assert (created.returncode, created.stdout) == (0, b"/proc\n"), created.stderr
        got = await coord_process("get", "/proc")
        assert (got.returncode, got.stdout) == (0, b"from a process\n"), got.stderr
        missing = await coord_process("get", "/nope")
        assert missing.returncode == 1
        assert missing.stderr == b"coord: NoNodeError: node '/nope' does not exist\n"
    finally:
        server.kill()
        with trio.CancelScope(shield=True):
            await server.wait()
