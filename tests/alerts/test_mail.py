"""Alerts by e-mail through a real mail server (aiosmtpd) that offers STARTTLS and requires it before the
login: who gets which alert per role, one mail per episode, the daily digest, every signed checkpoint."""

from __future__ import annotations

import json

import pytest
from nacl.signing import VerifyKey

from appliance import alerts, audit, mail
from appliance.config_models import AlertsSettings
from tests.alerts.conftest import (ARCHIVE, AUDITOR, KEEPER, PRIVACY, SMTP_USER, configure, mail_settings)
from tests.alerts.servers import HOST


def _break_the_chain(box) -> None:
    """An entry added behind the log's back (its hash does not follow): what verification must catch."""
    seq, head = audit.head(box.catalog)
    box.catalog.db.execute("INSERT INTO audit_log (seq, time, actor, action, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                           [seq + 1, box.now_iso(), "intruder", "delete", head, "0" * 64])
    box.catalog.db.conn.commit()


def test_each_role_gets_its_alerts_once_per_episode(box, smtp, certs, tmp_path, disk, clock):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path, digest=[AUDITOR]))
    disk.free_percent = 4.0
    _break_the_chain(box)

    first = alerts.check(box)
    assert len(first.opened) == 2 and first.mailed == 2
    for received in smtp.inbox:
        assert received.tls and received.login == SMTP_USER  # STARTTLS first, then the login
        assert received.message["From"] == "kluis-noord@gemeente.test"
        assert received.message.get_content_type() == "text/plain"
    disk_mails = [r for r in smtp.inbox if "Schijf bijna vol" in r.message["Subject"]]
    audit_mails = [r for r in smtp.inbox if "Controle van het logboek mislukt" in r.message["Subject"]]
    assert len(disk_mails) == 1 and disk_mails[0].envelope_to == [KEEPER]  # the disk is the keeper's alone
    assert disk_mails[0].message["Subject"].startswith("[Kluis Kluis] ")
    body = disk_mails[0].message.get_content()
    assert "4.0% vrij" in body and "Wat te doen:" in body
    # the audit log: keeper and privacy officer at once; the auditor chose the digest
    assert len(audit_mails) == 1 and sorted(audit_mails[0].envelope_to) == sorted([KEEPER, PRIVACY])
    assert "regel" in audit_mails[0].message.get_content()
    digests = [r for r in smtp.to(AUDITOR)]
    assert len(digests) == 1 and "Dagelijks overzicht" in digests[0].message["Subject"]
    digest_body = digests[0].message.get_content()
    assert "Controle van het logboek mislukt" in digest_body and "Schijf" not in digest_body  # not the auditor's

    # The conditions go on: no second mail, also not after an hour of checks.
    for _ in range(12):
        clock.advance(minutes=5)
        again = alerts.check(box)
        assert again.mailed == 0 and again.digests == 0 and not again.opened
    assert len(smtp.inbox) == 3

    # Room comes back: the episode ends after the quiet time, and a new shortage is a new episode, one mail.
    disk.free_percent = 50.0
    alerts.check(box)
    assert [e["kind"] for e in alerts.open_episodes(box)].count(alerts.DISK_FULL) == 1  # not yet: no flapping
    clock.advance(minutes=31)
    assert alerts.check(box).closed
    disk.free_percent = 3.0
    clock.advance(minutes=5)
    assert alerts.check(box).mailed == 1
    assert len([r for r in smtp.to(KEEPER) if "Schijf bijna vol" in r.message["Subject"]]) == 2

    # Next day: the digest again, telling what is still open.
    clock.advance(days=1)
    assert alerts.check(box).digests == 1
    assert len(smtp.to(AUDITOR)) == 2

    sent = audit.entries(box.catalog, action="alert_mail")
    assert {e["details"]["what"] for e in sent} == {alerts.DISK_FULL, alerts.AUDIT_FAILING, "digest"}


def test_disk_episode_does_not_flap_around_its_threshold(box, smtp, certs, tmp_path, disk, clock):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    disk.free_percent = 9.5
    alerts.check(box)
    for free in (10.5, 9.8, 11.0, 9.9, 10.2):  # around the 10% threshold, under threshold + 2
        clock.advance(minutes=20)
        disk.free_percent = free
        assert not alerts.check(box).opened
    assert len(smtp.inbox) == 1


def test_each_signed_checkpoint_is_mailed_once(box, smtp, certs, tmp_path):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path, checkpoints=[ARCHIVE]))
    signed = audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=True)
    assert alerts.check(box).checkpoints == 1
    mails = smtp.to(ARCHIVE)
    assert len(mails) == 1 and "controlepunt" in mails[0].message["Subject"]
    attachment = next(mails[0].message.iter_attachments())
    assert attachment.get_filename().endswith(".jsonl")
    cps = [json.loads(line) for line in attachment.get_content().splitlines()]
    verify_key = VerifyKey(bytes.fromhex(box.catalog.get_meta("signing_public_key")))
    assert len(cps) == 1 and audit.check_signature(cps[0], verify_key) is None
    assert cps == [signed]
    assert alerts.check(box).checkpoints == 0  # sent once

    # the next checkpoint covers the alert_mail entry too; it goes out as well
    audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock)
    alerts.check(box)
    second = json.loads(next(smtp.to(ARCHIVE)[1].message.iter_attachments()).get_content())
    assert second["count"] > cps[0]["count"] and audit.check_signature(second, verify_key) is None


def test_a_server_without_starttls_gets_nothing(box, certs, tmp_path, disk):
    from aiosmtpd.controller import Controller

    from tests.alerts.servers import free_port

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    port = free_port()
    plain = Controller(Handler(), hostname=HOST, port=port)  # no TLS: STARTTLS not offered
    plain.start()
    try:
        cfg = AlertsSettings(smtp_server=HOST, smtp_port=port, sender="kluis@gemeente.test", keeper=[KEEPER])
        with pytest.raises(mail.MailError, match="STARTTLS"):
            mail.send(cfg, mail.message(cfg, [KEEPER], "x", "y"))
        configure(box, alerts={"smtp_server": HOST, "smtp_port": port, "sender": "kluis@gemeente.test",
                               "keeper": [KEEPER]})
        disk.free_percent = 2.0
        result = alerts.check(box)
        assert result.opened and result.mailed == 0
        assert alerts.open_episodes(box)[0]["mailed_at"] is None  # tried again at the next check
    finally:
        plain.stop()
    assert received == []


def test_a_certificate_of_another_ca_is_refused(box, smtp, tmp_path, disk):
    from tests.alerts.servers import make_certs

    other = make_certs(tmp_path / "other")
    configure(box, alerts=mail_settings(smtp, other, tmp_path))
    disk.free_percent = 2.0
    assert alerts.check(box).mailed == 0
    assert smtp.inbox == []


def test_wrong_password_is_one_clear_error(smtp, certs, tmp_path):
    secret = tmp_path / "wrong"
    secret.write_text("not it\n")
    cfg = AlertsSettings(smtp_server=HOST, smtp_port=smtp.port, sender="kluis@gemeente.test", smtp_user=SMTP_USER,
                         smtp_password_file=str(secret), smtp_ca_file=str(certs.ca))
    with pytest.raises(mail.MailError, match="refused the login"):
        mail.send(cfg, mail.message(cfg, [KEEPER], "x", "y"))
    assert smtp.inbox == []


def test_the_mailed_checkpoint_catches_a_log_cut_short_on_the_box(box, smtp, certs, tmp_path, password_file):
    """Someone with the disk removes the last entries and every checkpoint the box kept: the box's own check
    cannot tell any more, the checkpoint in the mail (the third place) can."""
    from tests.conftest import add_role_users, run_kluis

    configure(box, alerts=mail_settings(smtp, certs, tmp_path, checkpoints=[ARCHIVE]))
    for i in range(5):
        with box.catalog.transaction():
            audit.record(box.catalog, actor="fg", action="view", recording_id=f"rec-{i}", purpose="complaint")
    audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock)
    alerts.check(box)
    mailed = tmp_path / "uit-de-mail.jsonl"
    mailed.write_text(next(smtp.to(ARCHIVE)[0].message.iter_attachments()).get_content())

    count = audit.head(box.catalog)[0]
    db = box.catalog.db
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE seq > ?", [count - 3])
    db.execute("DELETE FROM audit_checkpoints")
    db.conn.commit()
    box.close()
    add_role_users(box.data_dir, "au")
    base = ["audit", "verify", "--data", box.data_dir, "--user", "au", "--password-file", password_file]
    assert run_kluis(*base).returncode == 0  # on the box alone the cut does not show
    caught = run_kluis(*base, "--checkpoint", mailed, check=False)
    assert caught.returncode != 0 and "tampered" in caught.stderr.decode()
    assert "checkpoint signed at" in caught.stdout.decode()  # the mailed one, the only one left


def test_a_mail_server_that_stays_away_is_one_log_line(box, smtp, certs, tmp_path, disk, clock, caplog):
    import logging

    from tests.alerts.servers import free_port

    settings = mail_settings(smtp, certs, tmp_path)
    configure(box, alerts={**settings, "smtp_port": free_port()})  # nothing listens there
    disk.free_percent = 2.0
    with caplog.at_level(logging.INFO, logger="kluis.alerts"):
        for _ in range(6):
            assert alerts.check(box).mailed == 0
            clock.advance(minutes=5)
        configure(box, alerts=settings)  # the server is back
        assert alerts.check(box).mailed == 1
    not_sent = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert len(not_sent) == 1 and "unreachable" in not_sent[0].getMessage() and not_sent[0].exc_info is None
    assert any(r.getMessage() == "mail works again" for r in caplog.records)
    assert len(smtp.inbox) == 1  # the episode's one mail, once the server took it
