"""Key slots, the recovery key and the box's unlock paths (appliance/keys.py, appliance/box.py)."""

from __future__ import annotations

import json

import pytest
from nacl.public import PrivateKey

from appliance import keys
from appliance.box import Box
from appliance.errors import KluisError, NotFound, WrongSecret

FAST = "interactive"


def test_slot_opens_with_its_password_only():
    secret = bytes(range(32))
    slot = keys.new_slot("geheim wachtwoord", secret, FAST)
    assert keys.open_slot(slot, "geheim wachtwoord") == secret
    for wrong in ("geheim wachtwoorD", "geheim wachtwoord ", "", "x"):
        with pytest.raises(WrongSecret, match="wrong password"):
            keys.open_slot(slot, wrong)
    # nothing in the slot is the secret in the clear
    assert secret.hex() not in json.dumps(slot)


def test_slot_salts_differ():
    a, b = keys.new_slot("pw", b"k" * 32, FAST), keys.new_slot("pw", b"k" * 32, FAST)
    assert a["salt"] != b["salt"] and a["sealed"] != b["sealed"] and a["verifier"] != b["verifier"]


def test_login_only_slot():
    slot = keys.new_slot("alleen inloggen", None, FAST)
    assert slot["sealed"] is None
    assert keys.open_slot(slot, "alleen inloggen") is None
    with pytest.raises(WrongSecret):
        keys.open_slot(slot, "fout")


def test_damaged_slot_is_reported():
    slot = keys.new_slot("pw", b"k" * 32, FAST)
    sealed = bytearray(bytes.fromhex(slot["sealed"]))
    sealed[-1] ^= 1
    with pytest.raises(WrongSecret, match="damaged"):
        keys.open_slot({**slot, "sealed": sealed.hex()}, "pw")


def test_slot_refuses_empty_password_and_unknown_profile():
    with pytest.raises(KluisError):
        keys.new_slot("", b"k" * 32, FAST)
    with pytest.raises(KluisError, match="profile"):
        keys.new_slot("pw", b"k" * 32, "lightning")


def test_recovery_key_format_and_checksum():
    text = keys.new_recovery_key()
    assert text.startswith("KLUIS-")
    raw = keys.parse_recovery_key(text)
    assert len(raw) == 32
    # as people copy it from paper: lower case, spaces instead of dashes, no prefix
    assert keys.parse_recovery_key(text.lower()) == raw
    assert keys.parse_recovery_key(text.replace("-", " ")) == raw
    assert keys.parse_recovery_key(text.removeprefix("KLUIS-")) == raw


def test_recovery_key_typos_are_caught_by_the_checksum():
    text = keys.new_recovery_key()
    body = text.removeprefix("KLUIS-")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    typos = []
    for pos in (0, 7, 20, len(body) - 1):
        if body[pos] == "-":
            continue
        # flip the top bit of the 5-bit group: always a key bit (the last character carries only two key
        # bits; a typo in its three padding bits changes nothing and decodes to the same key)
        wrong = alphabet[alphabet.index(body[pos]) ^ 0b10000]
        typos.append(body[:pos] + wrong + body[pos + 1 :])
    typos.append(body[1] + body[0] + body[2:])  # two characters swapped
    typos.append(body[:-1])  # one character missing
    typos.append(body + "A")  # one too many
    typos.append("KLUIS-0000")  # not base32 at all
    for typo in typos:
        if typo == body:
            continue
        with pytest.raises(WrongSecret, match="typing errors"):
            keys.parse_recovery_key("KLUIS-" + typo)


def test_recovery_slot():
    secret = bytes(PrivateKey.generate())
    recovery = keys.new_recovery_key()
    slot = keys.new_recovery_slot(recovery, secret)
    assert keys.open_recovery_slot(slot, recovery) == secret
    with pytest.raises(WrongSecret, match="wrong recovery key"):
        keys.open_recovery_slot(slot, keys.new_recovery_key())  # well-formed, but another key


def test_box_unlock_paths(box_dir, password):
    data, recovery = box_dir
    with Box(data) as box:
        by_password = box.unlock("admin", password)
        by_recovery = box.unlock_recovery(recovery)
        assert bytes(by_password) == bytes(by_recovery)
        assert bytes(by_password.public_key) == bytes(box.public_key)
        with pytest.raises(WrongSecret):
            box.unlock("admin", password + "!")
        with pytest.raises(WrongSecret):
            box.unlock_recovery(keys.new_recovery_key())
        with pytest.raises(WrongSecret, match="typing"):
            box.unlock_recovery(recovery[:12] + ("A" if recovery[12] != "A" else "B") + recovery[13:])
        with pytest.raises(NotFound):
            box.unlock("nobody", password)
        assert box.authenticate("admin", password)["name"] == "admin"


def test_login_only_user_cannot_open_footage(box):
    box.catalog.add_user("teamleider", "team_leader", keys.new_slot("tl-pw", None, FAST), box.now_iso())
    assert box.authenticate("teamleider", "tl-pw")["name"] == "teamleider"
    with pytest.raises(WrongSecret):
        box.authenticate("teamleider", "fout")
    with pytest.raises(KluisError, match="no key slot"):
        box.unlock("teamleider", "tl-pw")


def test_disabled_user_is_refused(box):
    box.catalog.add_user("oud", "officer", keys.new_slot("pw", None, FAST), box.now_iso())
    box.catalog.db.execute("UPDATE users SET disabled = 1 WHERE name = 'oud'")
    with pytest.raises(KluisError, match="disabled"):
        box.authenticate("oud", "pw")


def test_slot_of_another_box_is_refused(box):
    stranger = PrivateKey.generate()
    box.catalog.add_user("vreemd", "keeper", keys.new_slot("pw", bytes(stranger), FAST), box.now_iso())
    with pytest.raises(KluisError, match="another box"):
        box.unlock("vreemd", "pw")


def test_no_secret_on_disk_opens_footage(box_dir, password):
    """Without a password or the recovery key nothing on disk holds the private key in the clear."""
    data, _ = box_dir
    with Box(data) as box:
        secret = bytes(box.unlock("admin", password))
    for path in data.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert secret not in blob and secret.hex().encode() not in blob, path


def test_signing_key_file(tmp_path):
    path = tmp_path / "keys" / "signing.key"
    key = keys.write_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert bytes(keys.read_signing_key(path)) == bytes(key)
    with pytest.raises(FileExistsError):
        keys.write_signing_key(path)  # never overwrite a box's identity
    path.write_bytes(b"short")
    with pytest.raises(KluisError, match="damaged"):
        keys.read_signing_key(path)
    with pytest.raises(KluisError, match="missing"):
        keys.read_signing_key(tmp_path / "nope")
