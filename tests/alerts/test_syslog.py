"""The audit log, checkpoints and alerts to a real log collector: rsyslogd with its GnuTLS driver, listening
for RFC 5425 (TLS, octet-counting), writing what its RFC 5424 parser took from each message."""

from __future__ import annotations

import json

from nacl.signing import VerifyKey

from appliance import alerts, audit, log_collector
from appliance.box import Box
from tests.alerts.conftest import configure
from tests.alerts.servers import HOST, Rsyslog, parse_sd


def _syslog(box, collector, certs) -> None:
    configure(box, syslog={"server": f"{HOST}:{collector.port}", "ca_file": str(certs.ca), "hostname": "kluis-noord"})


def _add(box, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with box.catalog.transaction():
            audit.record(box.catalog, actor="admin", action="settings_change", client="127.0.0.1",
                         details={"web.idle_minutes": {"old": i, "new": i + 1}, "note": 'quote " and ] here'})


def _audit_lines(collector) -> list[dict]:
    return [row for row in collector.lines() if row["msgid"] == "audit"]


def test_every_audit_entry_arrives_once_with_its_fields(box, rsyslog, certs):
    _syslog(box, rsyslog, certs)
    _add(box, 30)
    with box.catalog.transaction():  # a person's name, and details longer than syslog's classic 1 KiB
        audit.record(box.catalog, actor="Jan Dé", action="hold_add", recording_id="rec-1", purpose="complaint",
                     case_ref="K-2026-14", details={"reason": "ü" * 3000})
    done = log_collector.forward(box)
    count = audit.head(box.catalog)[0]
    assert done.error is None and done.audit == count
    rows = rsyslog.wait_for(count)
    stored = audit.entries(box.catalog)
    assert len(_audit_lines(rsyslog)) == count
    for row, entry in zip(_audit_lines(rsyslog), stored):
        assert (row["app"], row["hostname"], row["pri"]) == ("kluis", "kluis-noord", "109")  # log audit, notice
        sd = parse_sd(row["sd"])[log_collector.SD_AUDIT]
        assert int(sd["seq"]) == entry["seq"] and sd["hash"] == entry["hash"] and sd["prev"] == entry["prev_hash"]
        assert sd["actor"] == entry["actor"] and sd["action"] == entry["action"]
        assert row["timestamp"].replace("+00:00", "Z").startswith(entry["time"][:19])
        if entry["details"] is not None:
            assert json.loads(row["msg"].lstrip("\ufeff")) == entry["details"]
    assert parse_sd(rows[-2]["sd"])[log_collector.SD_AUDIT]["client"] == "127.0.0.1"
    last = parse_sd(rows[-1]["sd"])[log_collector.SD_AUDIT]
    assert (last["actor"], last["purpose"], last["case"], last["recording"]) == ("Jan Dé", "complaint", "K-2026-14",
                                                                                 "rec-1")


def test_an_outage_and_a_restart_lose_nothing_and_send_nothing_twice(box, rsyslog, certs, tmp_path, clock):
    _syslog(box, rsyslog, certs)
    _add(box, 5)
    log_collector.forward(box)
    first = audit.head(box.catalog)[0]
    rsyslog.wait_for(first)

    rsyslog.stop()  # the collector is away while the box goes on
    _add(box, 7, start=5)
    away = log_collector.forward(box)
    assert away.error and "unreachable" in away.error and away.audit == 0
    assert int(box.catalog.get_meta(log_collector.CURSOR_AUDIT)) == first  # the cursor stays put

    back = Rsyslog(rsyslog.folder, certs, port=rsyslog.port)  # the same collector again, the same file
    back.start()
    try:
        # the box restarts too: a fresh process, its own connection; the cursor is in the catalog
        with Box(box.data_dir, clock) as again:
            resumed = log_collector.forward(again)
            assert resumed.error is None
            total = audit.head(again.catalog)[0]
            assert resumed.audit == total - first
            assert log_collector.forward(again).audit == 0  # nothing more to send
        back.wait_for(total)
        seqs = [int(parse_sd(r["sd"])[log_collector.SD_AUDIT]["seq"]) for r in _audit_lines(back)]
        assert seqs == list(range(1, total + 1))  # every entry, in order, once
    finally:
        back.stop()


def test_checkpoints_and_alert_episodes_reach_the_collector(box, rsyslog, certs, disk, clock):
    _syslog(box, rsyslog, certs)
    signed = audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=True)
    disk.free_percent = 3.0
    alerts.check(box)  # opens the disk episode and forwards everything
    disk.free_percent = 60.0
    clock.advance(minutes=31)
    alerts.check(box)  # closes it (after the quiet time) and forwards that
    rows = rsyslog.wait_for(audit.head(box.catalog)[0] + 3)

    cps = [r for r in rows if r["msgid"] == "checkpoint"]
    assert len(cps) == 1
    sd = parse_sd(cps[0]["sd"])[log_collector.SD_CHECKPOINT]
    assert sd["signature"] == signed["signature"] and int(sd["count"]) == signed["count"]
    body = json.loads(cps[0]["msg"].lstrip("\ufeff"))
    assert audit.check_signature(body, VerifyKey(bytes.fromhex(box.catalog.get_meta("signing_public_key")))) is None

    episodes = [parse_sd(r["sd"])[log_collector.SD_ALERT] | {"pri": r["pri"], "msg": r["msg"]}
                for r in rows if r["msgid"] == "alert"]
    assert [(e["kind"], e["state"]) for e in episodes] == [(alerts.DISK_FULL, "open"), (alerts.DISK_FULL, "closed")]
    assert episodes[0]["pri"] == "12" and episodes[1]["pri"] == "13"  # user.warning, then user.notice
    assert "3.0% vrij" in episodes[0]["msg"]


def test_an_untrusted_collector_gets_nothing(box, rsyslog, tmp_path):
    from tests.alerts.servers import make_certs

    other = make_certs(tmp_path / "other")
    configure(box, syslog={"server": f"{HOST}:{rsyslog.port}", "ca_file": str(other.ca)})
    _add(box, 2)
    done = log_collector.forward(box)
    assert done.error and "not trusted" in done.error
    assert box.catalog.get_meta(log_collector.CURSOR_AUDIT) is None
    assert rsyslog.lines() == []


def test_a_collector_that_asks_for_the_box_certificate(box, certs, tmp_path):
    collector = Rsyslog(tmp_path / "x509", certs, auth_mode="x509/certvalid")
    collector.start()
    try:
        _add(box, 3)
        configure(box, syslog={"server": f"{HOST}:{collector.port}", "ca_file": str(certs.ca)})
        without = log_collector.forward(box)
        assert without.error and "client certificate" in without.error and without.audit == 0
        assert box.catalog.get_meta(log_collector.CURSOR_AUDIT) is None
        configure(box, syslog={"server": f"{HOST}:{collector.port}", "ca_file": str(certs.ca),
                               "cert_file": str(certs.client_cert), "key_file": str(certs.client_key)})
        done = log_collector.forward(box)
        assert done.error is None and done.audit == audit.head(box.catalog)[0]
        assert len(collector.wait_for(done.audit)) == done.audit
    finally:
        collector.stop()
