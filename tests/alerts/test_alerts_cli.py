"""`kluis alerts test` and `kluis alerts list` through the real CLI: the keeper's login, a test mail through
the real mail server and a test line to the real collector, on record; others are refused."""

from __future__ import annotations

import json

from appliance import alerts, audit
from appliance.box import Box
from tests.alerts.conftest import ARCHIVE, KEEPER, PRIVACY, configure, mail_settings
from tests.alerts.servers import HOST, parse_sd
from tests.conftest import add_role_users, run_kluis


def test_the_keeper_sends_a_test_and_lists_open_alerts(box_dir, password_file, smtp, rsyslog, certs, tmp_path):
    data, _ = box_dir
    with Box(data) as box:
        configure(box, alerts=mail_settings(smtp, certs, tmp_path, checkpoints=[ARCHIVE]),
                  syslog={"server": f"{HOST}:{rsyslog.port}", "ca_file": str(certs.ca)})
        alerts.update_episodes(box, [alerts.Condition(alerts.NOT_DOCKED, "CAM007", "Camera CAM007 is weg.")])

    out = run_kluis("alerts", "test", "--data", data, "--password-file", password_file).stdout.decode()
    assert "mail: sent" in out and "syslog: sent" in out
    assert len(smtp.inbox) == 1
    test_mail = smtp.inbox[0]
    assert sorted(test_mail.envelope_to) == sorted([KEEPER, PRIVACY, "audit@gemeente.test", ARCHIVE])
    assert test_mail.message["Subject"] == "[Kluis Kluis] Testbericht" and "admin" in test_mail.message.get_content()
    line = rsyslog.wait_for(1)[0]
    assert line["msgid"] == "test" and parse_sd(line["sd"])["alert@32473"]["actor"] == "admin"

    listed = json.loads(run_kluis("alerts", "list", "--data", data, "--password-file", password_file, "--json").stdout)
    assert [(e["kind"], e["subject"]) for e in listed] == [(alerts.NOT_DOCKED, "CAM007")]

    add_role_users(data, "fg")
    refused = run_kluis("alerts", "test", "--data", data, "--user", "fg", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr.decode()
    assert len(smtp.inbox) == 1
    with Box(data) as box:
        tests = audit.entries(box.catalog, action="alerts_test")
    assert len(tests) == 1 and tests[0]["actor"] == "admin" and tests[0]["details"]["mail"] == "ok"


def test_a_failing_test_says_why(box_dir, password_file, tmp_path):
    data, _ = box_dir
    with Box(data) as box:
        configure(box, alerts={"smtp_server": HOST, "smtp_port": 9, "sender": "kluis@gemeente.test", "keeper": [KEEPER]})
    result = run_kluis("alerts", "test", "--data", data, "--password-file", password_file, check=False)
    assert result.returncode == 1
    assert "mail: FAILED: mail server 127.0.0.1:9 unreachable" in result.stderr.decode()
    assert "syslog: not configured" in result.stdout.decode()
