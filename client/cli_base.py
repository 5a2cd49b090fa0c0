"""What every `coord` command runs with: its streams, its session, its exit codes.

Shared by cli.py (the parser and the shell) and the modules that define
commands (cli_acl.py), so that those need not import the shell.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Io:
    """The streams a run reads and writes; tests pass io.StringIO objects."""

    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]

    def out(self, text: str = "") -> None:
        """One line of results on stdout."""
        self.stdout.write(text + "\n")

    def out_lines(self, lines: Iterable[str]) -> None:
        """Several lines of results (a stat, a listing) on stdout."""
        for line in lines:
            self.out(line)

    def note(self, text: str) -> None:
        """A diagnostic line on stderr (progress, hints), flushed at once."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def fail(self, text: str) -> None:
        """An error line on stderr, prefixed with the program's name."""
        self.note(f"coord: {text}")

    def flush(self) -> None:
        self.stdout.flush()


@dataclass
class Context:
    """What a command runs with: the streams, the server and the session."""

    io: Io
    hosts: str
    session_timeout: float
    connect_timeout: float
    in_shell: bool = False
    auth: list[tuple[str, str]] = field(default_factory=list)
    """(scheme, credential) pairs every session of this run authenticates with."""
    ssl_context: ssl.SSLContext | None = None
    """TLS for every session of this run (None: plain TCP)."""
    session: Client | None = None
    """The session a command runs over (set by the shell and by one-shot runs)."""

    @property
    def zk(self) -> Client:
        if self.session is None:
            raise RuntimeError("this command needs a session")
        return self.session


Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    """A command: its name, one-line help, arguments and handler."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Handler
    needs_session: bool = True
    aliases: tuple[str, ...] = ()


def data_arg(text: str) -> bytes:
    """Command-line data is text; it is stored as UTF-8."""
    return text.encode("utf-8")
