"""appliance.agecrypt against the real age CLI (Debian) and pyrage: both directions, both recipients.

The scrypt (passphrase) recipient is our own streaming code; these tests are its test vectors: what it
writes, age and pyrage read; what the age CLI writes, it reads; damage and a wrong passphrase are refused.
(pyrage's own passphrase encryption is left out: rage calibrates scrypt's cost to the machine, which
makes it slow and unpredictable on a loaded test machine.)
"""

from __future__ import annotations

import io
import os
import subprocess

import pyrage
import pytest

from appliance import agecrypt
from tests.handover.conftest import age_with_passphrase, needs_age

CHUNK = agecrypt.CHUNK
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]


def encrypt_pw(data: bytes, passphrase: str, work_factor: int = 10) -> bytes:
    out = io.BytesIO()
    agecrypt.encrypt_with_passphrase(io.BytesIO(data), out, passphrase, work_factor=work_factor)
    return out.getvalue()


def decrypt_pw(blob: bytes, passphrase: str) -> bytes:
    out = io.BytesIO()
    agecrypt.decrypt_with_passphrase(io.BytesIO(blob), out, passphrase)
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_passphrase_round_trip_with_pyrage(size):
    data = os.urandom(size)
    passphrase = agecrypt.generate_passphrase()
    blob = encrypt_pw(data, passphrase)
    assert blob.startswith(agecrypt.MAGIC) and (size < 16 or data not in blob)
    assert pyrage.passphrase.decrypt(blob, passphrase) == data
    assert decrypt_pw(blob, passphrase) == data


@needs_age
def test_the_age_cli_decrypts_our_passphrase_file(tmp_path):
    data = os.urandom(CHUNK + 1234)
    passphrase = agecrypt.generate_passphrase()
    # the default work factor, as the package uses it
    (tmp_path / "p.age").write_bytes(encrypt_pw(data, passphrase, work_factor=agecrypt.WORK_FACTOR))
    status, said = age_with_passphrase(["-d", "-o", str(tmp_path / "p.out"), str(tmp_path / "p.age")], passphrase)
    assert status == 0, said
    assert (tmp_path / "p.out").read_bytes() == data


@needs_age
def test_we_decrypt_what_the_age_cli_writes_with_a_passphrase(tmp_path):
    data = os.urandom(CHUNK * 2)
    (tmp_path / "in").write_bytes(data)
    status, said = age_with_passphrase(["-p", "-o", str(tmp_path / "in.age"), str(tmp_path / "in")],
                                       "geheim-voor-de-politie", prompts=2)
    assert status == 0, said
    assert decrypt_pw((tmp_path / "in.age").read_bytes(), "geheim-voor-de-politie") == data


@needs_age
def test_x25519_streams_to_the_age_cli(tmp_path, age_key):
    identity_file, public = age_key
    data = os.urandom(5 * CHUNK + 3)
    out = io.BytesIO()
    agecrypt.encrypt_to_recipient(io.BytesIO(data), out, public)
    (tmp_path / "k.age").write_bytes(out.getvalue())
    subprocess.run(["age", "-d", "-i", str(identity_file), "-o", str(tmp_path / "k.out"), str(tmp_path / "k.age")],
                   check=True, capture_output=True)
    assert (tmp_path / "k.out").read_bytes() == data
    back = io.BytesIO()
    agecrypt.decrypt(io.BytesIO(out.getvalue()), back, agecrypt.read_identities(identity_file))
    assert back.getvalue() == data


def test_wrong_passphrase_and_damage_are_refused():
    data = os.urandom(CHUNK + 100)
    blob = encrypt_pw(data, "goed wachtwoord 1")
    with pytest.raises(agecrypt.AgeError, match="wrong passphrase"):
        decrypt_pw(blob, "fout wachtwoord 1")
    damaged = bytearray(blob)
    damaged[-50] ^= 1
    with pytest.raises(agecrypt.AgeError, match="damaged"):
        decrypt_pw(bytes(damaged), "goed wachtwoord 1")
    with pytest.raises(agecrypt.AgeError):
        decrypt_pw(blob[:-(CHUNK // 2)], "goed wachtwoord 1")  # cut off: the last chunk is missing its flag
    header_changed = blob.replace(b"-> scrypt ", b"-> scrypt  ", 1)
    with pytest.raises(agecrypt.AgeError):
        decrypt_pw(header_changed, "goed wachtwoord 1")


def test_generated_passphrases_are_long_and_different():
    seen = {agecrypt.generate_passphrase() for _ in range(50)}
    assert len(seen) == 50
    assert all(len(p.replace("-", "")) == 40 for p in seen)  # 40 base32 characters: 200 bits
