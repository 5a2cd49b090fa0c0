"""Certificate files for TLS tests, from a throwaway CA (trustme)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_pki(ca: Any, root: Path) -> dict[str, Path]:
    """The CA, a certificate for 127.0.0.1 (server and member) and two client certificates
    (subjects CN=alice|mallory,OU=clients,O=example), as PEM files under `root`."""
    files = {"ca": root / "ca.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    server = ca.issue_cert("127.0.0.1", "localhost")
    files["server_cert"] = root / "server.pem"
    files["server_key"] = root / "server.key"
    server.cert_chain_pems[0].write_to_path(files["server_cert"])
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(files["server_cert"], append=True)
    server.private_key_pem.write_to_path(files["server_key"])
    for name in ("alice", "mallory"):
        cert = ca.issue_cert(
            f"{name}@example.org",
            common_name=name,
            organization_name="example",
            organization_unit_name="clients",
        )
        files[name] = root / f"{name}.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(files[name])
    return files
