"""The local stack's TLS certificates: a CA of its own and one server certificate for this host (127.0.0.1 and
localhost), made once into <state>/tls and kept. The broker's TLS listener serves them as production's brokers serve
their cluster CA's, so that the clients' TLS (shared.backbone.tls) is tried against a real broker and a real
PostgreSQL (tests/integration/test_tls.py), CA and names checked.

Made with `cryptography` (a development dependency), not a command-line tool the machine may not have."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.local.settings import DEVELOPMENT_KEYSTORE_PASSWORD, LocalStack

# Long enough that a stack kept for years does not find its certificates expired.
VALID_FOR = datetime.timedelta(days=3650)
HOST_NAMES = ("localhost",)
HOST_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Certificates:
    """Where the stack's TLS files are."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA's certificate (PEM): what a client trusts."""
        return self.folder / "ca.pem"

    @property
    def certificate(self) -> Path:
        """This host's certificate (PEM), signed by the CA."""
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        """Its private key (PEM, PKCS#8, readable by the owner alone)."""
        return self.folder / "server.key"

    @property
    def keystore(self) -> Path:
        """The key and certificate in one PKCS#12 file, for the broker (its password: DEVELOPMENT_KEYSTORE_PASSWORD)."""
        return self.folder / "server.p12"

    @classmethod
    def of(cls, local: LocalStack) -> Certificates:
        return cls(local.tls_dir)

    def made(self) -> bool:
        return all(path.exists() for path in (self.ca, self.certificate, self.key, self.keystore))


@dataclass(frozen=True)
class Authority:
    """A CA: its key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def new(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def save(self, path: Path) -> Path:
        """Its certificate (PEM), what a client trusts, written to `path`."""
        path.write_bytes(pem(self.certificate))
        return path

    def issue(
        self, names: tuple[str, ...] = HOST_NAMES, addresses: tuple[str, ...] = HOST_ADDRESSES
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A server's key and certificate for these DNS names and IP addresses."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alternatives: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        alternatives += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else addresses[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return key, certificate


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as PKCS#8 PEM, unencrypted (the file's mode protects it, as a server's key file)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure(local: LocalStack) -> Certificates:
    """The stack's certificates, made if any file is missing (all anew: a key and its certificate go together)."""
    found = Certificates.of(local)
    if found.made():
        return found
    found.folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    authority = Authority.new("OMS local stack CA")
    key, certificate = authority.issue()
    authority.save(found.ca)
    found.certificate.write_bytes(pem(certificate))
    found.key.touch(mode=0o600)
    found.key.write_bytes(key_pem(key))
    found.keystore.touch(mode=0o600)
    found.keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"server",
            key,
            certificate,
            [authority.certificate],
            serialization.BestAvailableEncryption(DEVELOPMENT_KEYSTORE_PASSWORD.encode()),
        )
    )
    return found
