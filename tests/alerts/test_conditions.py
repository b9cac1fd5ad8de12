"""Each kind of alert read from the box's own state, on a clock the test moves: when an episode opens, when
people are told (some kinds wait), when it closes; and device alerts that repeat without flooding anyone."""

from __future__ import annotations

from datetime import timedelta

from appliance import access_requests, alerts, audit
from appliance.dock import devices
from tests.alerts.conftest import KEEPER, PRIVACY, configure, mail_settings


def _kinds(box) -> list[tuple[str, str]]:
    return [(e["kind"], e["subject"]) for e in alerts.open_episodes(box)]


def test_a_device_alert_storm_is_one_episode_and_one_mail(box, smtp, certs, tmp_path, clock):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    for i in range(50):  # an impostor refused again and again, and one other camera once
        devices.alert(box, "key_mismatch", f"10.0.0.66 advertises CAM001 with another key ({i})", serial="CAM001")
        if i % 10 == 0:
            clock.advance(minutes=5)
            alerts.check(box)
    devices.alert(box, "pair_refused", "wrong code", serial="CAM002")
    alerts.check(box)
    assert sorted(_kinds(box)) == [(alerts.DEVICE_ALERT, "key_mismatch:CAM001"), (alerts.DEVICE_ALERT,
                                                                                   "pair_refused:CAM002")]
    subjects = [r.message["Subject"] for r in smtp.to(KEEPER)]
    assert len(subjects) == 2 and all("Melding van een camera" in s for s in subjects)
    body = next(r for r in smtp.inbox if "CAM001" in r.message.get_content()).message.get_content()
    assert "'key_mismatch' over camera CAM001" in body
    # quiet for a day: both end; a new one later is a new episode with its own mail
    clock.advance(hours=25)
    assert len(alerts.check(box).closed) == 2
    devices.alert(box, "key_mismatch", "again", serial="CAM001")
    alerts.check(box)
    assert len(smtp.to(KEEPER)) == 3


def test_the_clock_is_told_only_after_its_grace(box, smtp, certs, tmp_path, clock, monkeypatch):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    monkeypatch.setenv("KLUIS_TIMESYNC", "no")
    assert alerts.check(box).opened and smtp.inbox == []  # open, not yet due: NTP needs a while after a boot
    clock.advance(minutes=31)
    assert alerts.check(box).mailed == 1
    assert "Klok niet gesynchroniseerd" in smtp.inbox[0].message["Subject"]
    monkeypatch.setenv("KLUIS_TIMESYNC", "yes")
    clock.advance(minutes=10)
    assert not alerts.check(box).closed  # absent for less than the quiet time
    clock.advance(minutes=21)
    assert alerts.check(box).closed and _kinds(box) == []
    assert len(smtp.inbox) == 1


def test_a_clock_that_recovers_within_its_grace_is_never_told(box, smtp, certs, tmp_path, clock, monkeypatch):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    monkeypatch.setenv("KLUIS_TIMESYNC", "no")
    alerts.check(box)
    monkeypatch.setenv("KLUIS_TIMESYNC", "yes")
    clock.advance(minutes=29)
    alerts.check(box)
    clock.advance(minutes=31)
    alerts.check(box)
    assert _kinds(box) == [] and smtp.inbox == []


def test_a_camera_not_docked_and_a_backup_overdue(box, smtp, certs, tmp_path, clock):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path, team_leader=["tl@gemeente.test"]))
    devices.seen(box, devices.Advert(serial="CAM007", address="10.0.0.7", port=8443, model="BC-9", firmware="2.1",
                                     proto="kluis-dock/1", fp="ab" * 32, paired=False,
                                     service_name="CAM007._kluis._tcp.local.", txt={}))
    box.catalog.db["devices"].update("CAM007", {"paired": 1, "officer": "jansen"})
    devices.record_dock(box, "CAM007", clock(), 0.0, "10.0.0.7")
    clock.advance(days=2)
    alerts.check(box)
    assert _kinds(box) == []
    clock.advance(days=2)  # four days without docking (3 allowed)
    alerts.check(box)
    assert _kinds(box) == [(alerts.NOT_DOCKED, "CAM007")]
    mail = next(r for r in smtp.inbox if "Camera niet in het dock" in r.message["Subject"])
    assert sorted(mail.envelope_to) == sorted([KEEPER, "tl@gemeente.test"])
    assert "CAM007 (jansen)" in mail.message.get_content()
    devices.record_dock(box, "CAM007", clock(), 0.0, "10.0.0.7")  # back in its dock

    clock.advance(days=4)  # eight days since the box was made, no backup ever
    devices.record_dock(box, "CAM007", clock(), 0.0, "10.0.0.7")
    alerts.check(box)
    assert (alerts.BACKUP_OVERDUE, "") in _kinds(box)
    backup_mail = next(r for r in smtp.inbox if "Back-up te lang geleden" in r.message["Subject"])
    assert backup_mail.envelope_to == [KEEPER] and "nog nooit een back-up" in backup_mail.message.get_content()
    with box.catalog.transaction():  # what every backup run writes (appliance/backup.py)
        audit.record(box.catalog, actor="system", action="backup", clock=box.clock, details={"name": "kluis-x"})
    alerts.check(box)
    clock.advance(minutes=31)
    alerts.check(box)
    assert _kinds(box) == []


def test_a_request_near_its_deadline_goes_to_the_privacy_officer(box, smtp, certs, tmp_path, clock):
    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    received = (clock() - timedelta(days=27)).date()
    registered = access_requests.register(box, requester="J. Jansen", kind="inzage", received_on=received,
                                          given_time=clock() - timedelta(days=28), actor="admin")
    alerts.check(box)
    ref = registered.request["ref"]
    assert _kinds(box) == [(alerts.REQUEST_DUE, ref)]
    mail = smtp.inbox[0]
    assert mail.envelope_to == [PRIVACY] and ref in mail.message["Subject"]
    assert "Inzageverzoek" in mail.message.get_content() and "beantwoord" in mail.message.get_content()
    clock.advance(days=10)  # past the deadline now: the same episode, no second mail
    alerts.check(box)
    assert len(smtp.to(PRIVACY)) == 1
    assert "verstreken" in next(e for e in alerts.open_episodes(box) if e["kind"] == alerts.REQUEST_DUE)["detail"]


def test_the_scheduled_check_runs_on_its_own_connection(box, smtp, certs, tmp_path, disk):
    """As `kluis serve` schedules it (APScheduler, at start and every check_minutes), on its own Box."""
    import time

    from apscheduler.schedulers.background import BackgroundScheduler

    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    disk.free_percent = 2.0
    scheduler = BackgroundScheduler(timezone="UTC")
    job = alerts.schedule(scheduler, box)
    assert job.trigger.interval == timedelta(minutes=5)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while not smtp.inbox and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(smtp.inbox) == 1 and "Schijf bijna vol" in smtp.inbox[0].message["Subject"]
    assert _kinds(box) == [(alerts.DISK_FULL, "")]


def test_sync_failing_is_told_after_a_day(box, smtp, certs, tmp_path, clock):
    """The real sync client against an archive that cannot be reached (nothing listens at its port)."""
    import json

    from appliance import outbox
    from sync import client as sync_client
    from tests.alerts.servers import free_port

    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    box.catalog.set_meta(outbox.META_ARCHIVE, json.dumps({
        "url": f"https://127.0.0.1:{free_port()}", "cert_sha256": "00" * 32, "box_id": "box-1", "archive_id": "a",
        "archive_name": "Archief", "public_key": "11" * 32, "signing_key": "22" * 32, "enrolled_at": box.now_iso()}))
    assert sync_client.run_pass(box, pass_retry_s=0).errors
    alerts.check(box)
    assert _kinds(box) == [(alerts.SYNC_FAILING, "")] and smtp.inbox == []  # not for a passing hiccup
    for _ in range(5):
        clock.advance(hours=5)
        sync_client.run_pass(box, pass_retry_s=0)
        alerts.check(box)
    assert len(smtp.inbox) == 1 and "Synchronisatie met het archief mislukt" in smtp.inbox[0].message["Subject"]
    assert "archive unreachable" in smtp.inbox[0].message.get_content()  # the sync client's own words


def test_a_handover_waiting_is_told_to_the_privacy_officer_once(box, smtp, certs, tmp_path, clock):
    from appliance import handover, recordings
    from appliance.dock.footage import make_mp4
    from tests.conftest import add_role_users

    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    add_role_users(box.data_dir, "fg", "tl")
    start = clock() - timedelta(hours=2)
    clip = make_mp4(tmp_path / "clip.mp4", 1, start, "CAM001")
    recording = recordings.import_file(box, clip, camera="CAM001", officer="hh", start=start).recording_id
    handover_id = handover.prepare(box, "fg", [recording], receiver="Politie Utrecht, PV 123", basis="art. 126nd Sv",
                                   case_ref="PL0900-2026-1", purpose="police_report", protection="passphrase")
    alerts.check(box)
    assert _kinds(box) == [(alerts.HANDOVER_WAITING, handover_id)]
    mail = smtp.inbox[0]
    assert mail.envelope_to == [PRIVACY] and handover_id in mail.message["Subject"]
    assert "PL0900-2026-1" in mail.message.get_content() and "wacht op goedkeuring" in mail.message.get_content()
    handover.cancel(box, handover_id, "fg", "verkeerde zaak")
    clock.advance(minutes=31)
    alerts.check(box)
    assert _kinds(box) == [] and len(smtp.inbox) == 1


def test_a_check_that_fails_keeps_its_episode_open_and_logs_once(box, smtp, certs, tmp_path, disk, clock, caplog):
    import logging

    configure(box, alerts=mail_settings(smtp, certs, tmp_path))
    disk.free_percent = 2.0
    alerts.check(box)
    disk.free_percent = None  # the disk cannot even be asked now
    with caplog.at_level(logging.ERROR, logger="kluis.alerts"):
        for _ in range(3):
            clock.advance(minutes=31)
            result = alerts.check(box)
            assert not result.closed
    assert _kinds(box) == [(alerts.DISK_FULL, "")] and len(smtp.inbox) == 1
    assert len([r for r in caplog.records if "check of disk_full failed" in r.getMessage()]) == 1
