"""`coord-server`: run a standalone coordination server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import trio

from coord.server.config import ConfigError, load_config
from coord.server.runtime import StandaloneServer
from coord.server.runtime.disk import StorageError
from coord.server.runtime.member import EnsembleMember
from coord.server.tools.dump_log import dump_log, dump_snapshot


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coord-server",
        description="Run a coordination server (standalone, on 127.0.0.1:2281 by default).",
    )
    parser.add_argument("--config", type=Path, help="a TOML file with the settings")
    parser.add_argument(
        "--id", type=int, dest="member_id", help="which member of the config's [ensemble] this is"
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="client port (default 2281; 0 picks a free one)")
    parser.add_argument(
        "--zk-port",
        type=int,
        help="also serve ZooKeeper's protocol on this port (off by default; 2181 is usual; "
        "0 picks a free one)",
    )
    parser.add_argument("--data-dir", type=Path, help="where data is kept (default ./coord-data)")
    parser.add_argument("--tick-ms", type=int, help="the tick (standalone: 2000 ms)")
    parser.add_argument(
        "--min-session-timeout-ms",
        type=int,
        help="the shortest session timeout a client may have (default 2 ticks)",
    )
    parser.add_argument(
        "--max-session-timeout-ms",
        type=int,
        help="the longest session timeout a client may have (default 40000, or 20 ticks)",
    )
    parser.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_const",
        const=False,
        help="do not fsync the log (tests and benchmarks only: a crash loses acknowledged writes)",
    )
    parser.add_argument("--snapshot-every", type=int, help="txns between snapshots (100000)")
    parser.add_argument(
        "--truncate-corrupt-log",
        action="store_const",
        const=True,
        help="at start, truncate the log at a corrupt record instead of refusing to start",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    return parser


def inspect_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="coord-server", description="Print a data directory's records readably."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dump_log_parser = sub.add_parser("dump-log", help="print log records")
    dump_log_parser.add_argument("path", type=Path, help="a data directory or one log segment")
    dump_snap_parser = sub.add_parser("dump-snapshot", help="print a snapshot")
    dump_snap_parser.add_argument("path", type=Path, help="a snapshot file")
    dump_snap_parser.add_argument("--data", action="store_true", help="print node data too")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"coord-server: {str(args.path)!r} does not exist", file=sys.stderr)
        return 2
    if args.command == "dump-log":
        return dump_log(args.path, sys.stdout)
    return dump_snapshot(args.path, sys.stdout, with_data=args.data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("dump-log", "dump-snapshot"):
        return inspect_main(argv)
    if argv and argv[0] == "ensemble":
        from coord.server.tools.local_ensemble import local_ensemble_main

        return local_ensemble_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(
            args.config,
            {
                "host": args.host,
                "port": args.port,
                "zk_port": args.zk_port,
                "data_dir": args.data_dir,
                "tick_ms": args.tick_ms,
                "min_session_timeout_ms": args.min_session_timeout_ms,
                "max_session_timeout_ms": args.max_session_timeout_ms,
                "fsync": args.fsync,
                "snapshot_every": args.snapshot_every,
                "truncate_corrupt_log": args.truncate_corrupt_log,
            },
            member_id=args.member_id,
        )
    except ConfigError as exc:
        print(f"coord-server: {exc}", file=sys.stderr)
        return 2
    server = StandaloneServer(config) if config.ensemble is None else EnsembleMember(config)

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(server.serve)
                # A line that scripts and tests can wait for.
                print(f"coord-server listening on {config.host}:{port}", flush=True)
                if server.zk_port:
                    zk_address = f"{config.host}:{server.zk_port}"
                    print(f"coord-server zookeeper port on {zk_address}", flush=True)
                async for signum in signals:
                    logging.getLogger("coord.server").info(
                        "%s: shutting down", signal.Signals(signum).name
                    )
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(run)
    except BaseException as raised:  # trio wraps what a nursery raises in a group
        error = _sole_exception(raised)
        if isinstance(error, KeyboardInterrupt):
            return 0
        if isinstance(error, StorageError):
            print(f"coord-server: {error}", file=sys.stderr)
            return 1
        if isinstance(error, OSError):
            print(
                f"coord-server: cannot listen on {config.host}:{config.port}: {error}",
                file=sys.stderr,
            )
            return 1
        raise
    return 0


def _sole_exception(exc: BaseException) -> BaseException:
    """The one leaf exception inside nested single-member groups, or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
