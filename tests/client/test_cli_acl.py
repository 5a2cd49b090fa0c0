"""The shell's ACL commands (`getacl`, `setacl`, `addauth`, `create --acl`, `--auth`)
against the real server, run in-process with captured streams."""

from __future__ import annotations

from coord.acl import digest_credential
from coord.client.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from tests.client.test_cli import coord
from tests.conftest import RunningServer

ALICE_ID = digest_credential(b"alice:secret")


async def test_create_with_an_acl_then_getacl_prints_it_in_setacl_form(
    coord_server: RunningServer,
) -> None:
    s = coord_server.hosts
    acl = f"digest:{ALICE_ID}:cdrwa,world:anyone:r"
    auth = ("--auth", "digest:alice:secret")
    assert (await coord("-s", s, *auth, "create", "/app", "v", "--acl", acl)).rc == EXIT_OK
    shown = await coord("-s", s, *auth, "getacl", "/app")
    assert shown.rc == EXIT_OK and shown.lines == [f"digest:{ALICE_ID}:rwcda", "world:anyone:r"]
    # without the credential: reading works (world:anyone:r), writing does not
    assert (await coord("-s", s, "get", "/app")).lines == ["v"]
    refused = await coord("-s", s, "set", "/app", "x")
    assert refused.rc == EXIT_FAILED and "NoAuthError" in refused.err and "WRITE" in refused.err
    # getacl's output goes back into setacl as it is
    back = ",".join(shown.lines[:1])
    assert (await coord("-s", s, *auth, "setacl", "-v", "0", "/app", back)).rc == EXIT_OK
    assert (await coord("-s", s, *auth, "getacl", "/app")).lines == shown.lines[:1]
    hidden = await coord("-s", s, "get", "/app")
    assert hidden.rc == EXIT_FAILED and "READ" in hidden.err


async def test_addauth_in_the_shell_applies_to_the_next_commands(
    coord_server: RunningServer,
) -> None:
    s = coord_server.hosts
    acl = f"digest:{ALICE_ID}:cdrwa"
    assert (
        await coord("-s", s, "--auth", "digest:alice:secret", "create", "/p", "x", "--acl", acl)
    ).rc == EXIT_OK
    script = "get /p\naddauth digest alice:secret\nget /p\n"
    result = await coord("-s", s, stdin=script)
    assert result.rc == EXIT_FAILED  # the first get failed
    assert result.lines == ["x"] and "NoAuthError" in result.err


async def test_bad_acl_and_credential_text_is_a_usage_error(coord_server: RunningServer) -> None:
    s = coord_server.hosts
    bad_acl = await coord("-s", s, "create", "/q", "--acl", "world:anyone:xyz")
    assert bad_acl.rc == EXIT_USAGE and "unknown permission letter" in bad_acl.err
    bad_auth = await coord("-s", s, "--auth", "nocolon", "ls", "/")
    assert bad_auth.rc == EXIT_USAGE and "scheme:credential" in bad_auth.err
    failed = await coord("-s", s, "--auth", "martian:x", "ls", "/")
    assert failed.rc == EXIT_FAILED and "AuthFailedError" in failed.err
