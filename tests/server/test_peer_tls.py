"""Mutual TLS between members: a 3-process ensemble whose config has [tls] links its
members over TLS (each presents its certificate and checks the others'), and a
peer port no longer takes a plain-TCP hello."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio

from coord.client import Client
from coord.framing import encode_frame
from tests.ensemble_procs import ProcessEnsemble
from tests.server.test_peer_ports import SECRET, _peer_ports
from tests.server.tlsfiles import write_pki

trustme = pytest.importorskip("trustme", reason="trustme not installed: pip install trustme")


async def test_members_link_over_mutual_tls_and_refuse_plain_tcp(tmp_path: Path) -> None:
    pki = write_pki(trustme.CA(), tmp_path)
    ensemble = ProcessEnsemble(tmp_path)
    text = ensemble.config.read_text().replace("[ensemble]\n", f'[ensemble]\nsecret = "{SECRET}"\n')
    text += (
        f'\n[tls]\ncert_file = "{pki["server_cert"]}"\nkey_file = "{pki["server_key"]}"\n'
        f'ca_file = "{pki["ca"]}"\n'
    )
    ensemble.config.write_text(text)
    await ensemble.start_all()
    try:
        leader = await ensemble.wait_all_serving()
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        for member in (1, 2, 3):  # each member's client port is TLS, and writes commit
            async with Client(ensemble.host(member), ssl_context=context) as zk:
                await zk.create(f"/over-tls-{member}", b"x")
        port = _peer_ports(ensemble)[leader]
        with trio.fail_after(10):
            plain = await trio.open_tcp_stream("127.0.0.1", port)
            await plain.send_all(encode_frame({"hello": 2}))
            with pytest.raises(trio.BrokenResourceError):
                while await plain.receive_some(1024):
                    pass
                raise trio.BrokenResourceError("closed")  # a clean close counts too
        log = (tmp_path / f"member-{leader}.log").read_text()
        assert "dropping a peer connection from 127.0.0.1" in log and "handshake failed" in log
        async with Client(ensemble.hosts, ssl_context=context) as zk:
            assert sorted(await zk.get_children("/")) == [f"over-tls-{m}" for m in (1, 2, 3)]
    finally:
        await ensemble.stop_all()
