"""A real box on a clock the tests move, a real mail server (aiosmtpd, STARTTLS) and a real log collector
(rsyslogd with GnuTLS), each with certificates of a test CA."""

from __future__ import annotations

import shutil
from collections import namedtuple
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import alerts, config
from appliance.box import Box
from tests.alerts.servers import HOST, Rsyslog, make_certs, start_mail_server
from tests.moving_clock import Clock

SMTP_USER, SMTP_PASSWORD = "kluis-noord", "mail password for tests"
KEEPER, PRIVACY, AUDITOR, ARCHIVE = ("beheer@gemeente.test", "fg@gemeente.test", "audit@gemeente.test",
                                     "archief@gemeente.test")


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "certs")


@pytest.fixture
def smtp(certs):
    server = start_mail_server(certs, SMTP_USER, SMTP_PASSWORD)
    yield server
    server.controller.stop()  # type: ignore[attr-defined]


@pytest.fixture
def rsyslog(tmp_path, certs):
    if shutil.which("rsyslogd") is None and not Path("/usr/sbin/rsyslogd").exists():
        pytest.fail("rsyslogd is missing: `make debs` installs rsyslog and rsyslog-gnutls")
    collector = Rsyslog(tmp_path / "rsyslog", certs)
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture
def clock():
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def box(box_dir, clock, monkeypatch):
    monkeypatch.setenv("KLUIS_TIMESYNC", "yes")  # the clock alert has its own test
    data, _recovery = box_dir
    with Box(data, clock) as opened:
        yield opened


def configure(box: Box, **tables) -> None:
    box.settings = config.change(box.data_dir, tables)


def mail_settings(smtp, certs, tmp_path: Path, **extra) -> dict:
    secret = tmp_path / "smtp-password"
    secret.write_text(SMTP_PASSWORD + "\n")
    return {"smtp_server": HOST, "smtp_port": smtp.port, "sender": "kluis-noord@gemeente.test",
            "smtp_user": SMTP_USER, "smtp_password_file": str(secret), "smtp_ca_file": str(certs.ca),
            "keeper": [KEEPER], "privacy_officer": [PRIVACY], "auditor": [AUDITOR], **extra}


Usage = namedtuple("Usage", "total used free")


class Disk:
    """The data disk's free space as the alerts read it (shutil.disk_usage, the operating system's answer):
    set by the test, so that "nearly full" does not depend on the machine's own disk."""

    def __init__(self, monkeypatch):
        self.free_percent: float | None = 50.0
        monkeypatch.setattr(alerts, "disk_usage", self)

    def __call__(self, path):
        if self.free_percent is None:
            raise OSError(5, "Input/output error")
        total = 100 * 2**30
        free = int(total * self.free_percent / 100)
        return Usage(total, total - free, free)


@pytest.fixture(autouse=True)
def disk(monkeypatch):
    """Every alert test reads this disk (half free unless the test says otherwise), never the machine's."""
    return Disk(monkeypatch)


@pytest.fixture(autouse=True)
def fresh_faults(monkeypatch):
    """What failed before belongs to another test: each starts with no known mail or syslog fault."""
    monkeypatch.setattr(alerts, "_faults", {})
