"""`coord`: the command-line shell of the coordination service.

One set of commands, three ways in:

    coord -s HOST:PORT ls /app          one command over one session, then exit
    coord -s HOST:PORT                  a shell: commands read line by line from
    coord -s HOST:PORT shell            stdin (a terminal or a pipe), one session
    coord -s HOST:PORT bench ...        the benchmark of client/bench.py

The server comes from `-s/--server`, else $COORD_SERVER, else 127.0.0.1:2281.

Output is for scripts first: `ls` prints one child per line, `get` prints the
data alone, `stat` prints `name = value` lines, `watch` prints one
`TYPE PATH ZXID` line per event (client/cli_format.py has the formats).
Diagnostics go to stderr. Exit status: 0 success, 1 the operation failed
(a one-line message names the error, the path and the expected and actual
values), 2 a usage error, 130 interrupted by Ctrl-C. `watch` ends with 0 on
Ctrl-C, since that is how it is meant to be stopped.

The shell runs every command over its one session, so ephemeral nodes it
creates live until it exits. A line is split like a POSIX shell line (quotes
work, `#` starts a comment). `ls -w` and `get -w` in the shell leave the
watch in place and print a `WATCHER:: ...` line when it fires, as zkCli does;
as a one-shot command they wait for the event and print it. Piped into, the
shell prints no prompt and exits 1 if any command failed, so that a script
of commands can be checked.

Everything is reachable through `run(argv, stdin=, stdout=, stderr=)`, a
coroutine that returns the exit status and never calls sys.exit, so that
tests drive the whole CLI in-process inside their own trio run; `main()` is
the thin console-script wrapper around it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import IO, TYPE_CHECKING, Any, NoReturn

import trio

from coord.errors import CoordError, NoNodeError
from coord.messages import WatchedEvent
from coord.paths import join

from . import bench
from .cli_acl import ACL_COMMANDS, acl_option, parse_credential
from .cli_base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    Context,
    Io,
    data_arg,
)
from .cli_format import format_data, format_error, format_event, format_stat, format_tree
from .client import Client
from .streams import WatchStream

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

DEFAULT_SERVER = "127.0.0.1:2281"
SERVER_ENV = "COORD_SERVER"

# --------------------------------------------------------------------------
# Input and output.


#: The Io of the current run, for argparse's help and usage output, which
#: otherwise writes to sys.stdout/sys.stderr behind the caller's back.
_current_io: ContextVar[Io] = ContextVar("coord_cli_io")


class UsageError(Exception):
    """A command line that does not parse; carries the usage of the parser that failed."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class _ParserExit(Exception):
    """argparse wanted to exit (after -h): the status to return instead."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting and writes to the run's Io.

    The shell parses many lines in one process and the tests run the CLI
    in-process, so a bad line must not end the process, and help must go to
    the streams the run was given.
    """

    #: Whether options may come between positionals (`create /a -e data`);
    #: set on the command parsers, which have no subparsers of their own.
    intermixed = False
    _parsing_intermixed = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Plain argparse gives an optional positional (create's DATA) its
        # default as soon as an option follows PATH; the intermixed parse
        # does not. It calls parse_known_args itself, hence the guard.
        if self.intermixed and not self._parsing_intermixed:
            self._parsing_intermixed = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._parsing_intermixed = False
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _ParserExit(status)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if not message:
            return
        io = _current_io.get(None)
        if io is None:
            super()._print_message(message, file)
        elif file is sys.stderr:
            io.stderr.write(message)
        else:
            io.stdout.write(message)


# --------------------------------------------------------------------------
# Commands.


def _print_watch_later(io: Io) -> Callable[[WatchedEvent], None]:
    """A one-shot watch for the shell: prints `WATCHER:: event` when it fires.

    Called from the client's reader task, so it only writes (never blocks).
    """

    def fire(event: WatchedEvent) -> None:
        io.out(f"WATCHER:: {format_event(event)}")
        io.flush()

    return fire


async def _with_watch(
    ctx: Context, wanted: bool, call: Callable[[Any], Awaitable[Any]]
) -> tuple[Any, WatchStream | None]:
    """Call `call(watch)` with the right kind of watch for the mode.

    Returns (result, stream): the stream to wait on for a one-shot command,
    None when there is nothing to wait for.
    """
    if not wanted:
        return await call(None), None
    if ctx.in_shell:
        return await call(_print_watch_later(ctx.io)), None
    stream = WatchStream(max_buffer=1)
    return await call(stream), stream


async def _wait_watch(ctx: Context, stream: WatchStream | None) -> None:
    """Print the event of a one-shot watch when it fires (the one-shot `-w` flag)."""
    if stream is None:
        return
    ctx.io.flush()
    ctx.io.note("waiting for the watch to fire (Ctrl-C stops)")
    event = await stream.next()
    ctx.io.out(format_event(event))


def _configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode whose children to list")
    p.add_argument("-w", "--watch", action="store_true", help="also leave a child watch")


async def _ls(ctx: Context, args: argparse.Namespace) -> int:
    children, stream = await _with_watch(
        ctx, args.watch, lambda watch: ctx.zk.get_children(args.path, watch=watch)
    )
    for name in sorted(children):
        ctx.io.out(name)
    await _wait_watch(ctx, stream)
    return EXIT_OK


def _configure_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode to read")
    p.add_argument("-w", "--watch", action="store_true", help="also leave a data watch")
    p.add_argument("-s", "--stat", action="store_true", help="print the stat after the data")


async def _get(ctx: Context, args: argparse.Namespace) -> int:
    (data, stat), stream = await _with_watch(
        ctx, args.watch, lambda watch: ctx.zk.get(args.path, watch=watch)
    )
    ctx.io.out(format_data(data))
    if args.stat:
        ctx.io.out_lines(format_stat(stat))
    await _wait_watch(ctx, stream)
    return EXIT_OK


def _configure_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode to write")
    p.add_argument("data", help="the new data (text, stored as UTF-8)")
    p.add_argument(
        "-v", "--version", type=int, default=-1, help="only if the node is at this version"
    )
    p.add_argument("-s", "--stat", action="store_true", help="print the new stat")


async def _set(ctx: Context, args: argparse.Namespace) -> int:
    stat = await ctx.zk.set(args.path, data_arg(args.data), version=args.version)
    if args.stat:
        ctx.io.out_lines(format_stat(stat))
    return EXIT_OK


def _configure_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode to create (a prefix, with -s)")
    p.add_argument("data", nargs="?", default="", help="its data (text, stored as UTF-8)")
    p.add_argument("-e", "--ephemeral", action="store_true", help="deleted when this session ends")
    p.add_argument(
        "-s", "--sequential", action="store_true", help="append a unique increasing counter"
    )
    p.add_argument(
        "-c", "--container", action="store_true", help="deleted when its last child goes"
    )
    p.add_argument(
        "--ttl", type=float, metavar="SECONDS", help="deleted when unchanged this long and empty"
    )
    p.add_argument("-p", "--makepath", action="store_true", help="create missing parents too")
    acl_option(p)


async def _create(ctx: Context, args: argparse.Namespace) -> int:
    created = await ctx.zk.create(
        args.path,
        data_arg(args.data),
        ephemeral=args.ephemeral,
        sequential=args.sequential,
        container=args.container,
        ttl=args.ttl,
        makepath=args.makepath,
        acl=args.acl,
    )
    ctx.io.out(created)  # the real name matters for sequential nodes
    return EXIT_OK


def _configure_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode to delete")
    p.add_argument(
        "-v", "--version", type=int, default=-1, help="only if the node is at this version"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="with all its descendants")


async def _delete(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.zk.delete(args.path, version=args.version, recursive=args.recursive)
    return EXIT_OK


def _configure_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode")


async def _stat(ctx: Context, args: argparse.Namespace) -> int:
    stat = await ctx.zk.exists(args.path)
    if stat is None:
        raise NoNodeError(f"node {args.path!r} does not exist", path=args.path)
    ctx.io.out_lines(format_stat(stat))
    return EXIT_OK


def _configure_tree(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default="/", help="the root of the subtree (default /)")


async def _tree(ctx: Context, args: argparse.Namespace) -> int:
    entries: list[tuple[int, str]] = []

    async def walk(path: str, depth: int, top: bool) -> None:
        try:
            names = await ctx.zk.get_children(path)
        except NoNodeError:
            if top:
                raise
            return  # deleted while we walked: it is simply not in the picture
        for name in sorted(names):
            entries.append((depth, name))
            await walk(join(path, name), depth + 1, False)

    await walk(args.path, 1, True)
    for line in format_tree(args.path, entries):
        ctx.io.out(line)
    return EXIT_OK


def _configure_watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode to watch")
    p.add_argument("-r", "--recursive", action="store_true", help="its whole subtree too")
    p.add_argument("-n", "--count", type=int, default=0, metavar="N", help="stop after N events")


async def _watch(ctx: Context, args: argparse.Namespace) -> int:
    if args.count < 0:
        raise UsageError("--count must not be negative")
    seen = 0
    async with ctx.zk.watch(args.path, recursive=args.recursive) as events:
        what = " and its subtree" if args.recursive else ""
        ctx.io.note(f"watching {args.path}{what} (Ctrl-C stops)")
        async for event in events:
            ctx.io.out(format_event(event))
            ctx.io.flush()
            seen += 1
            if args.count and seen >= args.count:
                break
    return EXIT_OK


async def _sync(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.zk.sync(args.path)
    return EXIT_OK


def _configure_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=1, metavar="N", help="sessions (default 1)")
    p.add_argument(
        "--outstanding",
        type=int,
        default=1,
        metavar="K",
        help="requests in flight per session (default 1)",
    )
    amount = p.add_mutually_exclusive_group()
    amount.add_argument(
        "--duration", type=float, metavar="S", help="seconds per workload (default 5)"
    )
    amount.add_argument("--ops", type=int, metavar="N", help="requests per workload, in all")
    p.add_argument(
        "--value-size", type=int, default=100, metavar="B", help="bytes per value (default 100)"
    )
    p.add_argument(
        "--workloads",
        default=",".join(bench.WORKLOADS),
        metavar="LIST",
        help=f"comma-separated, in order (default {','.join(bench.WORKLOADS)})",
    )
    p.add_argument(
        "--get-ratio",
        type=float,
        default=0.8,
        metavar="R",
        help="share of gets in the mixed workload (default 0.8)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the mixed workload's choices")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def bench_config(hosts: str, session_timeout: float, args: argparse.Namespace) -> bench.BenchConfig:
    """The BenchConfig for parsed `bench` arguments; a bad value is a UsageError."""
    workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    duration = args.duration
    if duration is None and args.ops is None:
        duration = 5.0
    try:
        return bench.BenchConfig(
            hosts=hosts,
            clients=args.clients,
            outstanding=args.outstanding,
            duration=duration,
            ops=args.ops,
            value_size=args.value_size,
            workloads=workloads,
            get_ratio=args.get_ratio,
            seed=args.seed,
            session_timeout=session_timeout,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def _bench(ctx: Context, args: argparse.Namespace) -> int:
    config = bench_config(ctx.hosts, ctx.session_timeout, args)
    err = ctx.io.stderr
    live = not args.quiet
    # On a terminal the progress line is rewritten in place; into a file or
    # pipe each report is its own line, so that a log stays readable.
    in_place = live and err.isatty()
    pending_line = False

    def progress(report: bench.Progress) -> None:
        nonlocal pending_line
        if not live:
            return
        text = bench.format_progress(report)
        if in_place:
            err.write(f"\r\x1b[K{text}")
            pending_line = True
        else:
            err.write(text + "\n")
        err.flush()

    def note(message: str) -> None:
        nonlocal pending_line
        if not live:
            return
        if pending_line:
            err.write("\n")
            pending_line = False
        ctx.io.note(message)

    try:
        results = await bench.run_bench(config, progress=progress, note=note)
    finally:
        if pending_line:
            err.write("\n")
            err.flush()
    if args.json:
        ctx.io.out(bench.results_json(config, results))
    else:
        ctx.io.out(bench.format_table(results))
    failed = [r for r in results if r.errors]
    for r in failed:
        ctx.io.fail(f"{r.workload}: {r.errors} requests failed")
    return EXIT_FAILED if failed else EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command("ls", "list a znode's children, one per line", _configure_ls, _ls),
    Command("get", "print a znode's data", _configure_get, _get),
    Command("set", "set a znode's data", _configure_set, _set),
    Command("create", "create a znode and print its path", _configure_create, _create),
    Command("delete", "delete a znode", _configure_delete, _delete, aliases=("rm",)),
    Command("stat", "print all of a znode's stat fields", _configure_path, _stat),
    Command("tree", "print a subtree, indented", _configure_tree, _tree),
    Command("watch", "print a znode's events as they come", _configure_watch, _watch),
    Command("sync", "let this server catch up with the leader", _configure_path, _sync),
    Command(
        "bench",
        "measure throughput and latency",
        _configure_bench,
        _bench,
        needs_session=False,
    ),
    *ACL_COMMANDS,
)
COMMANDS_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


def _add_commands(subparsers: Any) -> None:
    for command in COMMANDS:
        p = subparsers.add_parser(
            command.name,
            aliases=list(command.aliases),
            help=command.help,
            description=command.help[0].upper() + command.help[1:] + ".",
        )
        p.intermixed = True
        command.configure(p)


def build_parser() -> CliParser:
    """The parser of the `coord` command line."""
    parser = CliParser(
        prog="coord",
        description="A shell for the coordination service. Without a command it reads"
        " commands from stdin, one per line.",
        epilog=f"The server is -s, else ${SERVER_ENV}, else {DEFAULT_SERVER}.",
    )
    parser.add_argument("-s", "--server", metavar="HOST:PORT", help="server(s), comma-separated")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting after this long (default 10)",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="the session's timeout (default 10)",
    )
    parser.add_argument(
        "--auth",
        type=parse_credential,
        action="append",
        default=[],
        metavar="SCHEME:CREDENTIAL",
        help="authenticate every session (digest:user:password); may be repeated",
    )
    parser.add_argument(
        "--tls-ca", metavar="FILE", help="use TLS, trusting the server certificates of this CA"
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="the client certificate (mutual TLS)")
    parser.add_argument("--tls-key", metavar="FILE", help="its private key")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    _add_commands(sub)
    sub.add_parser("shell", help="read commands from stdin over one session (the default)")
    return parser


def build_shell_parser() -> CliParser:
    """The parser of one shell line: the commands without the global options."""
    parser = CliParser(prog="coord", add_help=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    _add_commands(sub)
    return parser


def shell_help() -> str:
    """The text of the shell's `help` command."""
    width = max(len(c.name) for c in COMMANDS)
    lines = ["commands (COMMAND -h for its options):"]
    lines.extend(f"  {c.name.ljust(width)}  {c.help}" for c in COMMANDS)
    lines.append(f"  {'help'.ljust(width)}  this list; help COMMAND for one command")
    lines.append(f"  {'quit'.ljust(width)}  leave (so does end of input)")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Running commands.


@asynccontextmanager
async def connect(ctx: Context) -> AsyncIterator[Client]:
    """Open a session to ctx.hosts; ConnectionLossError after ctx.connect_timeout seconds."""
    async with Client(
        ctx.hosts,
        session_timeout=ctx.session_timeout,
        connect_timeout=ctx.connect_timeout,
        auth=ctx.auth,
        ssl_context=ctx.ssl_context,
    ) as zk:
        yield zk


async def _until_interrupted(work: Callable[[], Awaitable[int]]) -> tuple[int, bool]:
    """Run `work`; Ctrl-C cancels it instead of killing the process.

    Returns (status, interrupted). Outside the main thread, where signals
    cannot be received, `work` simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        return await work(), False
    status = EXIT_OK
    interrupted = False
    error: Exception | None = None
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(on_signal)
            try:
                status = await work()
            except Exception as exc:
                # Raised from here rather than through the nursery, so that the
                # caller sees the error itself, not an ExceptionGroup around it.
                error = exc
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error
    return status, interrupted


async def execute(ctx: Context, command: Command, args: argparse.Namespace) -> int:
    """Run one parsed command and turn its outcome into an exit status.

    Keeper errors (NoNode, BadVersion, ...) and connection failures print one
    line and give 1; the command's own usage checks give 2; Ctrl-C gives
    130, except for `watch`, which Ctrl-C is meant to end.
    """
    try:
        status, interrupted = await _until_interrupted(lambda: command.handler(ctx, args))
    except UsageError as exc:
        ctx.io.fail(f"{command.name}: {exc.message}")
        return EXIT_USAGE
    except CoordError as exc:
        ctx.io.flush()
        ctx.io.fail(format_error(exc))
        return EXIT_FAILED
    finally:
        ctx.io.flush()
    if interrupted:
        if command.name == "watch":
            return EXIT_OK
        ctx.io.fail("interrupted")
        return EXIT_INTERRUPTED
    return status


async def _read_line(stream: IO[str]) -> str:
    """One line of input ("" at the end), read in a thread so trio keeps running.

    The thread is abandoned if the run is cancelled: a blocked read of a
    terminal cannot be interrupted, and the process is exiting anyway.
    """
    return await trio.to_thread.run_sync(stream.readline, abandon_on_cancel=True)


async def run_shell(ctx: Context) -> int:
    """Read commands from ctx.io.stdin until `quit` or end of input, over one session.

    If the session is lost (expired), a new one is opened for the next
    command, with a warning: the old session's ephemerals and watches are
    gone and the user should know.
    """
    io = ctx.io
    parser = build_shell_parser()
    ctx.in_shell = True
    interactive = io.stdin.isatty()
    failures = 0
    async with AsyncExitStack() as stack:
        zk = await stack.enter_async_context(connect(ctx))
        ctx.session = zk
        if interactive:
            io.note(f"connected to {ctx.hosts}; type help for the commands, quit to leave")
        while True:
            if interactive:
                io.stdout.write(f"coord {ctx.hosts}> ")
                io.flush()
            line = await _read_line(io.stdin)
            if not line:
                if interactive:
                    io.out()
                break
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                io.fail(f"cannot split the line: {exc}")
                failures += 1
                continue
            if not words:
                continue
            name = words[0]
            if name in ("quit", "exit"):
                break
            if name == "help":
                if len(words) > 1 and words[1] in COMMANDS_BY_NAME:
                    _parse(parser, [words[1], "-h"])
                else:
                    io.out(shell_help())
                io.flush()
                continue
            args = _parse(parser, words)
            if not isinstance(args, argparse.Namespace):
                failures += args != EXIT_OK
                continue
            command = COMMANDS_BY_NAME[args.command]
            if command.needs_session and zk.state.is_final:
                io.fail("the session was lost; opening a new one")
                await stack.aclose()
                try:
                    zk = await stack.enter_async_context(connect(ctx))
                except CoordError as exc:
                    io.fail(format_error(exc))
                    failures += 1
                    continue  # the next command tries again
                ctx.session = zk
            status = await execute(ctx, command, args)
            failures += status != EXIT_OK
    if interactive:
        return EXIT_OK
    return EXIT_FAILED if failures else EXIT_OK


def _parse(
    parser: CliParser, words: Sequence[str], *, need_command: bool = True
) -> argparse.Namespace | int:
    """Parse a command line; on -h or a usage error, the exit status instead."""
    io = _current_io.get()
    try:
        args = parser.parse_args(list(words))
    except UsageError as exc:
        io.stderr.write(exc.usage)
        io.fail(exc.message)
        return EXIT_USAGE
    except _ParserExit as exc:
        io.flush()
        return exc.status
    if need_command and args.command is None:
        io.stderr.write(parser.format_usage())
        io.fail("a command is needed")
        return EXIT_USAGE
    return args


async def run(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the `coord` command line `argv` (without the program name); returns the exit status."""
    io = Io(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)
    token = _current_io.set(io)
    try:
        args = _parse(build_parser(), sys.argv[1:] if argv is None else argv, need_command=False)
        if not isinstance(args, argparse.Namespace):
            return args
        try:
            ssl_context = _ssl_context(args)
        except UsageError as exc:
            io.fail(exc.message)
            return EXIT_USAGE
        ctx = Context(
            io=io,
            hosts=args.server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER,
            session_timeout=args.session_timeout,
            connect_timeout=args.timeout,
            auth=args.auth,
            ssl_context=ssl_context,
        )
        if args.command in (None, "shell"):
            try:
                return await run_shell(ctx)
            except CoordError as exc:
                io.fail(format_error(exc))
                return EXIT_FAILED
        command = COMMANDS_BY_NAME[args.command]
        if not command.needs_session:
            return await execute(ctx, command, args)
        try:
            async with connect(ctx) as zk:
                ctx.session = zk
                return await execute(ctx, command, args)
        except CoordError as exc:
            io.fail(format_error(exc))
            return EXIT_FAILED
    finally:
        io.flush()
        _current_io.reset(token)


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of --tls-ca (and --tls-cert/--tls-key), None without TLS."""
    if args.tls_cert and not args.tls_ca:
        raise UsageError("--tls-cert needs --tls-ca")
    if not args.tls_ca:
        return None
    try:
        context = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS files: {exc}") from None
    return context


def main(argv: Sequence[str] | None = None) -> int:
    """The `coord` console script."""
    try:
        return trio.run(run, argv)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `coord tree / | head` closed our stdout: not worth a traceback. Point
        # stdout at /dev/null so that the interpreter's final flush is quiet
        # (the recipe of Python's signal module documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
