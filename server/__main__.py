"""`coord-server`: run a standalone coordination server."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from server.config import ConfigError, load_config
from server.runtime import StandaloneServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coord-server",
        description="Run a coordination server (standalone, on 127.0.0.1:2281 by default).",
    )
    parser.add_argument("--config", type=Path, help="a TOML file with the settings")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="client port (default 2281; 0 picks a free one)")
    parser.add_argument("--data-dir", type=Path, help="where data is kept (default ./coord-data)")
    parser.add_argument("--tick-ms", type=int, help="the tick; session timeouts are 2-20 ticks")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    return parser


def main(argv: list[str] | None = None) -> int:
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
                "data_dir": args.data_dir,
                "tick_ms": args.tick_ms,
            },
        )
    except ConfigError as exc:
        print(f"coord-server: {exc}", file=sys.stderr)
        return 2
    server = StandaloneServer(config)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            # A line that scripts and tests can wait for.
            print(f"coord-server listening on {config.host}:{port}", flush=True)
            logging.getLogger("server").warning(
                "data is kept in memory only until the storage layer lands (data dir %s unused)",
                config.data_dir,
            )

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"coord-server: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
