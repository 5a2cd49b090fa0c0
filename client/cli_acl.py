"""The shell's ACL and auth commands: `getacl`, `setacl`, `addauth`, and `create --acl`.

ACLs are written as zkCli writes them: entries `scheme:id:perms`, separated
by commas, with the permissions as letters of `cdrwa`
(`digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa,world:anyone:r`).
`getacl` prints one entry per line in that same form, so its output can be
given back to `setacl`. Credentials are `scheme:credential`
(`digest:alice:secret`), for `addauth` and for the global `--auth` flag.
"""

from __future__ import annotations

import argparse

from coord.acl import ACL, parse_acl_entry, perm_letters

from .cli_base import EXIT_OK, Command, Context
from .cli_format import format_stat


def parse_acl(text: str) -> list[ACL]:
    """zkCli's comma-separated ACL; argparse turns the ValueError into a usage error."""
    try:
        return [parse_acl_entry(entry.strip()) for entry in text.split(",") if entry.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_credential(text: str) -> tuple[str, str]:
    """`scheme:credential` as (scheme, credential)."""
    scheme, sep, credential = text.partition(":")
    if not sep or not scheme:
        raise argparse.ArgumentTypeError(
            f"a credential is scheme:credential (digest:user:password), got {text!r}"
        )
    return scheme, credential


def format_acl_entry(entry: ACL) -> str:
    return f"{entry.id.scheme}:{entry.id.id}:{perm_letters(entry.perms)}"


def acl_option(p: argparse.ArgumentParser) -> None:
    """The `--acl` option of commands that create nodes."""
    p.add_argument(
        "--acl",
        type=parse_acl,
        metavar="ACL",
        help="the new nodes' ACL, scheme:id:perms[,...] (default: open to all)",
    )


def _configure_getacl(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode")
    p.add_argument("-s", "--stat", action="store_true", help="print the stat after the ACL")


async def _getacl(ctx: Context, args: argparse.Namespace) -> int:
    acl, stat = await ctx.zk.get_acls(args.path)
    for entry in acl:
        ctx.io.out(format_acl_entry(entry))
    if args.stat:
        ctx.io.out_lines(format_stat(stat))
    return EXIT_OK


def _configure_setacl(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the znode")
    p.add_argument("acl", type=parse_acl, help="the new ACL, scheme:id:perms[,...]")
    p.add_argument(
        "-v", "--version", type=int, default=-1, help="only if the ACL is at this aversion"
    )
    p.add_argument("-s", "--stat", action="store_true", help="print the new stat")


async def _setacl(ctx: Context, args: argparse.Namespace) -> int:
    stat = await ctx.zk.set_acls(args.path, args.acl, version=args.version)
    if args.stat:
        ctx.io.out_lines(format_stat(stat))
    return EXIT_OK


def _configure_addauth(p: argparse.ArgumentParser) -> None:
    p.add_argument("scheme", help="the auth scheme (digest)")
    p.add_argument("credential", help="its credential (user:password for digest)")


async def _addauth(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.zk.add_auth(args.scheme, args.credential)
    return EXIT_OK


ACL_COMMANDS: tuple[Command, ...] = (
    Command(
        "getacl", "print a znode's ACL, one scheme:id:perms per line", _configure_getacl, _getacl
    ),
    Command("setacl", "replace a znode's ACL", _configure_setacl, _setacl),
    Command(
        "addauth", "authenticate the session (digest user:password)", _configure_addauth, _addauth
    ),
)
