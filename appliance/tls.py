"""The web UI's TLS certificate: self-signed, made at init with `cryptography`.

There is no CA on an office LAN without internet, so the first visit shows a browser warning; the
SHA-256 fingerprint that `kluis status` prints lets the keeper check it is this box's certificate.
Boxes made before this existed get theirs on first use (`ensure_certificate`).

    DIR/tls/cert.pem   the certificate (public)
    DIR/tls/key.pem    its private key (0600)
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .durable import write_atomic

CERT = "tls/cert.pem"
KEY = "tls/key.pem"
VALID_DAYS = 10 * 365  # an appliance certificate nobody renews; the fingerprint is what gets checked


def paths(data_dir: Path) -> tuple[Path, Path]:
    return Path(data_dir) / CERT, Path(data_dir) / KEY


def create_certificate(data_dir: Path, name: str = "Kluis", hostnames: list[str] | None = None) -> Path:
    """Write a new key and self-signed certificate (atomically: the key file first, mode 0600)."""
    cert_path, key_path = paths(data_dir)
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    wanted = [host, f"{host}.local", "localhost", *(hostnames or [])]  # .local: how mDNS names the box
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in dict.fromkeys(wanted) if _dns_name(h)]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} ({host})"[:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kluis")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_atomic(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path


def _dns_name(name: str) -> bool:
    """A host name a certificate can carry (an odd machine name is left out rather than fail init)."""
    return bool(name) and len(name) < 254 and all(
        label and len(label) < 64 and label.isascii() and label.replace("-", "").isalnum()
        for label in name.split("."))


def ensure_certificate(data_dir: Path, name: str = "Kluis") -> tuple[Path, Path]:
    cert_path, key_path = paths(data_dir)
    if not (cert_path.exists() and key_path.exists()):
        create_certificate(data_dir, name)
    return cert_path, key_path


def fingerprint(data_dir: Path) -> str | None:
    """SHA-256 of the certificate, as browsers show it (AB:CD:...); None when there is none yet."""
    cert_path, _ = paths(data_dir)
    if not cert_path.exists():
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def server_context(data_dir: Path, name: str = "Kluis") -> ssl.SSLContext:
    cert_path, key_path = ensure_certificate(data_dir, name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
