"""The self-signed certificate made at init, its lazy creation for older boxes, and `kluis status`."""

from __future__ import annotations

import json
import ssl

from cryptography import x509

from appliance import tls


def test_init_makes_certificate_and_status_shows_its_fingerprint(box_dir, kluis):
    data, _ = box_dir
    cert, key = tls.paths(data)
    assert cert.exists() and key.exists()
    assert key.stat().st_mode & 0o077 == 0
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    fingerprint = tls.fingerprint(data)
    assert len(fingerprint.split(":")) == 32
    out = kluis("status", "--data", data).stdout.decode()
    assert fingerprint in out
    info = json.loads(kluis("status", "--data", data, "--json").stdout)
    assert info["certificate_sha256"] == fingerprint and info["users"] == 1


def test_box_made_before_certificates_gets_one_lazily(box_dir, kluis):
    data, _ = box_dir
    cert, key = tls.paths(data)
    cert.unlink()
    key.unlink()
    assert tls.fingerprint(data) is None
    out = kluis("status", "--data", data).stdout.decode()
    assert tls.fingerprint(data) in out
    context = tls.server_context(data)  # loads: key and certificate match
    assert isinstance(context, ssl.SSLContext)
