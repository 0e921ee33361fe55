"""TLS to the brokers and the database: a service whose settings name the CA that signs their certificates speaks TLS
to them and checks each server's name against its certificate (PostgreSQL's verify-full); without one it speaks
plaintext, which production allows only on this host's loopback or on a network declared the service's own
(shared.backbone.settings)."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable


def verifying(ca_file: str | None) -> ssl.SSLContext:
    """A client's context that trusts only the certificates `ca_file` (PEM) signs (None: the system's CAs, for a
    public server) and checks the server's name."""
    context = ssl.create_default_context(cafile=ca_file)  # CERT_REQUIRED and the name checked, as by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback, where nothing on the network can read the traffic."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def hosts(bootstrap: str) -> Iterable[str]:
    """The hosts of a Kafka bootstrap list (`host:port,...`, an IPv6 host in brackets)."""
    return (server.strip().rpartition(":")[0] for server in bootstrap.split(",") if server.strip())
