"""Every audit action the code writes has a sentence in the logboek (webui/audit_text.py), in Dutch and in
English, with its fields labelled.

The actions are found in the source with `ast` (nothing is imported): an `action=` argument, the action of
the wrappers that take it second (appliance.dock.devices.audit, the Axis accounts' _audit, the archive's
audit), and the default of a parameter named `action`. A call site that passes the action on from its own
parameter is covered by its callers; one that builds it (an f-string, a local variable) must be listed in
DYNAMIC with what it can be, so that a new kind there fails this test too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from appliance.audit import ACTION_RE
from webui import audit_text, i18n

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "sync", "webui")
WRAPPERS = {"audit", "_audit"}  # f(box_or_actor, action, ...): the action is the second positional argument
READERS = {"entries", "page", "add_argument"}  # take action= but write nothing (a filter; argparse)

# Call sites that build their action: (file, source of the action expression) -> every value it takes.
DYNAMIC = {
    ("appliance/handover.py", "f'handover_{step}'"): {"handover_refuse", "handover_cancel"},
    ("sync/archive/checkpoints.py", "kind"): {"audit_backwards", "audit_fork"},
    ("appliance/timeline.py", "PLAYED"): {"view_played"},
}


def _constants(node: ast.expr) -> set[str] | None:
    """The action names an expression can be, or None when it is built at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _constants(node.body), _constants(node.orelse)
        return None if body is None or orelse is None else body | orelse
    if isinstance(node, ast.BoolOp):  # `action or ("export" if export else "view")`: the parameter plus these
        found: set[str] = set()
        for value in node.values:
            if isinstance(value, ast.Name):
                continue
            more = _constants(value)
            if more is None:
                return None
            found |= more
        return found
    return None


def _parameters(tree: ast.Module) -> dict[int, set[str]]:
    """Every node (by id) -> the parameter names of the function it is in (innermost wins)."""
    where: dict[int, set[str]] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
            for inner in ast.walk(fn):
                if hasattr(inner, "lineno"):
                    where[id(inner)] = names
    return where


def actions_in(rel: str, source: str, found: dict[str, list[str]], unread: list[str], seen: set) -> None:
    """Add the actions one module writes to `found` (and what cannot be read to `unread`)."""
    tree = ast.parse(source)
    params = _parameters(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            positional = node.args.posonlyargs + node.args.args
            pairs = list(zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults))
            pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg == "action" and isinstance(default, ast.Constant) and isinstance(default.value, str):
                    found.setdefault(default.value, []).append(f"{rel}:{node.lineno}")
            continue
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in READERS:
            continue
        expr = next((kw.value for kw in node.keywords if kw.arg == "action"), None)
        if expr is None and name in WRAPPERS and len(node.args) >= 2:
            expr = node.args[1]
        if expr is None:
            continue
        if isinstance(expr, ast.Name) and expr.id in params.get(id(node), set()):
            continue  # passed on from a parameter: its callers name it
        values = _constants(expr)
        key = (rel, ast.unparse(expr))
        if values is None and key in DYNAMIC:
            values = DYNAMIC[key]
            seen.add(key)
        if values is None:
            unread.append(f"{rel}:{node.lineno}: action={ast.unparse(expr)}")
            continue
        for value in values:
            found.setdefault(value, []).append(f"{rel}:{node.lineno}")


def written_actions() -> tuple[dict[str, list[str]], list[str]]:
    """action -> where it is written; and the call sites whose action could not be read (not in DYNAMIC)."""
    found: dict[str, list[str]] = {}
    unread: list[str] = []
    seen: set[tuple[str, str]] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            actions_in(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"), found, unread, seen)
    unread += [f"DYNAMIC entry no longer in the code: {key}" for key in set(DYNAMIC) - seen]
    return found, unread


def test_every_action_written_anywhere_has_a_sentence():
    found, unread = written_actions()
    assert not unread, f"audit actions this test cannot read; list them in DYNAMIC: {unread}"
    assert len(found) > 60  # the finder sees the code (a broken finder would pass an empty set)
    assert {"view", "range_read", "device_alert", "handover_cancel", "audit_fork", "break_glass"} <= set(found)
    for action in found:
        assert ACTION_RE.match(action), action
    missing = {action: where for action, where in found.items() if action not in audit_text.SENTENCES}
    assert not missing, f"audit actions without a sentence in webui/audit_text.py SENTENCES: {missing}"


def test_the_finder_sees_each_way_an_action_is_written():
    source = """
def alert(box, kind, *, action: str = "from_default"): ...
def f(box, action):
    audit.record(cat, actor="x", action="keyword")
    devices.audit(box, "wrapper", actor="x")
    self.archive.audit("system", "archive_wrapper")
    dict(action=action or ("branch_a" if x else "branch_b"))
    audit.record(cat, action=action)          # a parameter: its callers name it
    audit.entries(cat, action="only_a_filter")
    audit.record(cat, action=f"built_{x}")
"""
    found: dict[str, list[str]] = {}
    unread: list[str] = []
    actions_in("x.py", source, found, unread, set())
    assert set(found) == {"from_default", "keyword", "wrapper", "archive_wrapper", "branch_a", "branch_b"}
    assert unread == ["x.py:10: action=f'built_{x}'"]


READER = audit_text.Reader(roles=frozenset({"privacy_officer", "team_leader"}))


def _nl() -> audit_text.Reader:
    return audit_text.Reader(gettext=i18n.translations("nl").gettext, purpose_label=lambda c: {"complaint": "klacht"}.get(c, c),
                             role_label=lambda r: {"privacy_officer": "privacybeheerder", "team_leader": "teamleider"}[r],
                             roles=frozenset({"privacy_officer", "team_leader"}), name_of=lambda n: {"jan": "Jan de Vries"}.get(n, n))


# One entry per action, shaped as the code writes it (details keys from the record calls).
EXAMPLES: dict[str, dict] = {
    "view": {"purpose": "complaint", "case_ref": "K-2026-14"},
    "range_read": {"purpose": "complaint", "case_ref": "K-1", "details": {"start": 0, "end": 1023}},
    "view_played": {"purpose": "complaint", "case_ref": "K-1", "details": {"view": 41, "ranges": [[0.0, 12.5]]}},
    "export": {"details": {"handover": "H-1", "name": "a.mp4", "size": 12, "sha256": "ab" * 32}},
    "break_glass": {"details": {"command": "cat", "permission": "recordings.view"}},
    "ingest": {"details": {"camera": "CAM07", "sha256": "cd" * 32, "source": "dock", "clock_synced": True}},
    "reason_set": {"details": {"reason": "other", "text": "fietser op de stoep", "warnings": 2, "warning_given": 1,
                               "before": None, "before_warnings": None}},
    "category_change": {"details": {"old": [], "new": ["incident"], "added": ["incident"], "removed": [],
                                    "source": "axis", "term_days": 90, "delete_after": "2027-03-01T10:00:00.000Z"}},
    "hold_add": {"purpose": "complaint", "case_ref": "K-9", "details": {"hold": 3, "until": "2027-01-04T10:00:00.000Z"}},
    "hold_release": {"details": {"hold": 3, "reason": "zaak afgesloten"}},
    "hold_review": {"details": {"hold": 3, "review_at": "2027-03-01T10:00:00.000Z"}},
    "delete": {"details": {"reason": "term", "term_days": 28, "sha256": "ef" * 32}},
    "policy_change": {"details": {"old": 28, "new": 30, "source": "settings"}},
    "login": {}, "login_failed": {"details": {"reason": "wrong password", "failures": 5}},
    "command_refused": {"details": {"command": "cat", "reason": "role", "permission": "recordings.view"}}, "logout": {"details": {"reason": "idle"}},
    "user_add": {"details": {"user": "piet", "role": "team_leader", "team": "Noord"}},
    "user_change": {"details": {"user": "piet", "totp": True}},
    "role_change": {"details": {"user": "piet", "from": "team_leader", "to": "privacy_officer"}},
    "key_slot_change": {"details": {"user": "piet"}},
    "pair": {"details": {"camera": "CAM07", "fingerprint": "00" * 16}},
    "pair_refused": {"details": {"kind": "bad_pairing", "serial": "CAM08", "message": "refused"}},
    "device_alert": {"details": {"kind": "bad_advert", "message": "ignored"}},
    "offload_error": {"details": {"kind": "storage_full", "serial": "CAM07", "message": "disk full"}},
    "usb_found": {"details": {"kind": "usb_found", "serial": "U1"}},
    "usb_unknown": {"details": {"kind": "usb_unknown"}},
    "usb_error": {"details": {"kind": "usb_gone", "serial": "U1"}},
    "axis_connection_file": {"details": {"account": "kluis1", "site": "Noord", "encrypt": True}},
    "axis_first_contact": {"details": {"account": "kluis1", "system_name": "AXIS-1", "system_id": "x"}},
    "axis_auth_refused": {"details": {"kind": "axis_auth_refused", "address": "10.0.0.5"}},
    "axis_system_refused": {"details": {"kind": "axis_system_id_refused"}},
    "axis_abandoned": {"details": {"account": "kluis1", "clips": 2}},
    "setup": {"details": {"office": "Stadskantoor", "via": "wizard"}},
    "settings_change": {"details": {"box.name": {"old": "Kluis", "new": "Kluis Noord"}}},
    "alert_mail": {"details": {"what": "disk_full", "to": ["beheer@gemeente.nl"], "episode": 3}},
    "alerts_test": {"details": {"to": ["beheer@gemeente.nl"], "mail": "ok", "syslog": "ok"}},
    "verify": {"details": {"what": "audit_chain", "ok": True, "count": 12}},
    "backup": {"details": {"name": "b1", "recordings": 3}},
    "backup_failed": {"details": {"target": "/media/kluis-backup/kluis", "error": "disk full"}},
    "backup_push": {"details": {"target": "sftp://kluis@nas/kluis", "journal_seq": 4, "deletions": 2,
                                "footage_removed": 2}},
    "backup_test": {"details": {"target": "sftp://kluis@nas/kluis", "result": "ok"}},
    "restore": {"details": {"backup": "b1", "recordings": 3}},
    "update_staged": {"details": {"version": "1.2.0"}}, "update_refused": {"details": {"why": "bad signature"}},
    "update_start": {"details": {"version": "1.2.0", "previous": "1.1.0"}},
    "update": {"details": {"version": "1.2.0", "previous": "1.1.0"}},
    "update_rolled_back": {"details": {"version": "1.2.0", "why": "unhealthy"}},
    "audit_export": {"details": {"entries": 40, "since": None, "until": None}},
    "register_export": {"details": {"document": "dpia", "format": "pdf", "bytes": 48213}},
    "audit_prune": {"details": {"first": 1, "last": 5120, "count": 5120, "term_days": 730,
                                "actions": {"login": 5000, "view": 120}, "last_hash": "ab" * 32,
                                "cutoff": "2024-12-07T00:00:00.000Z"}},
    "request_add": {"purpose": "access_request", "case_ref": "V-1", "details": {"request": "V-1", "deadline": "2027-01-04"}},
    "request_link": {"details": {"request": "V-1", "how": "manual"}},
    "request_unlink": {"details": {"request": "V-1", "reason": "verkeerde opname"}},
    "request_close": {"details": {"request": "V-1", "outcome": "granted"}},
    "case_open": {"purpose": "police_report", "case_ref": "PV-2026-118",
                  "details": {"origin": "hold", "title": None}},
    "case_change": {"purpose": "police_report", "case_ref": "PV-2026-118",
                    "details": {"old": None, "new": "Mishandeling Oudegracht"}},
    "case_close": {"purpose": "police_report", "case_ref": "PV-2026-118",
                   "details": {"reason": "case closed", "holds_released": 2}},
    "case_reopen": {"purpose": "police_report", "case_ref": "PV-2026-118", "details": {"reason": "hoger beroep"}},
    "request_extend": {"purpose": "access_request", "case_ref": "V-1",
                       "details": {"request": "V-1", "months": 2, "deadline": "2027-03-04", "reason": "complex"}},
    "custody_report": {"recording_id": "r1", "details": {"subject": "recording"}},
    "request_letter": {"purpose": "access_request", "case_ref": "V-1", "details": {"request": "V-1", "letter": "receipt"}},
    "handover_prepare": {"purpose": "complaint", "case_ref": "K-1", "details": {"handover": "H-1", "receiver": "Politie"}},
    "handover_approve": {"details": {"handover": "H-1", "prepared_by": "fg"}},
    "handover_download": {"details": {"handover": "H-1", "name": "overdracht-H-1.zip", "size": 1024, "download": 2}},
    "handover_form": {"details": {"handover": "H-1", "state": "approved", "footage": False}},
    "handover_refuse": {"details": {"handover": "H-1", "reason": "onvolledig"}},
    "handover_cancel": {"details": {"handover": "H-1", "reason": "dubbel"}},
    "handover_denied": {"details": {"step": "approve", "reason": "own handover"}},
    "handover_failed": {"details": {"handover": "H-1", "error": "disk"}},
    "handover_register": {"details": {"rows": 2}},
    "stats_report": {"details": {"first": "2026-01", "last": "2026-12", "formats": ["pdf"], "everything": True}},
    "redact_start": {"details": {"job": "j1"}}, "redact": {"details": {"job": "j1"}},
    "redact_failed": {"details": {"job": "j1", "error": "ffmpeg"}},
    "sync_send": {"details": {"archive": "centraal", "size": 10}}, "sync_receipt": {"details": {"archive": "centraal"}},
    "sync_withdrawn": {"details": {"reason": "released"}}, "sync_rewrap": {"details": {"archive": "centraal"}},
    "requisition_report": {"details": {"requisition": "R-1", "matched": 2}},
    "enroll": {"details": {"name": "Kluis Noord"}}, "receive": {"details": {"size": 10}},
    "metadata_update": {"details": {"holds": []}}, "requisition_add": {"details": {"requisition": "R-1"}},
    "requisition_close": {"details": {"requisition": "R-1"}}, "checkpoint_refused": {"details": {"problem": "bad signature"}},
    "audit_backwards": {"details": {"message": "went back"}}, "audit_fork": {"details": {"message": "two logs"}},
    "witness_restart": {"details": {"reason": "restored from a backup", "last_witnessed": None}},
}


def _entry(action: str) -> dict:
    return {"seq": 7, "time": "2026-12-07T16:05:00.000Z", "actor": "jan", "action": action,
            "recording_id": "2026-12-07T15-00-00-cam07", "client": "web 10.0.0.9", **EXAMPLES[action]}


def test_every_sentence_has_an_example_here():
    assert set(EXAMPLES) == set(audit_text.SENTENCES)


@pytest.mark.parametrize("action", sorted(audit_text.SENTENCES))
def test_each_action_reads_as_a_sentence_in_both_languages(action):
    entry = _entry(action)
    english, dutch = audit_text.tell(entry, READER), audit_text.tell(entry, _nl())
    for told in (english, dutch):
        assert "%(" not in told.sentence and "?" not in told.sentence and not told.sentence.endswith(f": {action}")
        assert told.raw and f'"action": "{action}"' in told.raw  # the whole entry behind the toggle
        if "%(recording)s" in audit_text.SENTENCES[action]:
            assert entry["recording_id"] in told.sentence
        if "%(actor)s" in audit_text.SENTENCES[action]:
            assert ("jan" in told.sentence) if told is english else ("Jan de Vries" in told.sentence)
    assert dutch.sentence != english.sentence  # translated, not the id
    labels = [label for label, _value in dutch.fields]
    assert "Toegang via" in labels and all(label[0].isupper() for label in labels)


def test_the_example_of_the_issue_and_its_labelled_fields():
    told = audit_text.tell({**_entry("view"), "details": {"for": "complaint"}}, _nl())
    assert told.sentence == "Jan de Vries bekeek opname 2026-12-07T15-00-00-cam07 voor klacht (zaak K-2026-14)"
    hold = audit_text.tell(_entry("hold_add"), _nl())
    assert hold.sentence.startswith("Jan de Vries plaatste een bewaring op opname")
    assert ("Tot", "2027-01-04T10:00:00.000Z") in hold.fields or any(label == "Tot" for label, _ in hold.fields)
    role = audit_text.tell(_entry("role_change"), _nl())
    assert role.sentence == "Jan de Vries wijzigde de rol van piet van teamleider naar privacybeheerder"
    system = audit_text.tell({**_entry("delete"), "actor": "system"}, _nl())
    assert system.sentence.startswith("Het systeem verwijderde opname")
    assert ("Bewaartermijn (dagen)", "28") in system.fields and not any("sha" in v for _l, v in system.fields)
    changed = audit_text.tell(_entry("settings_change"), _nl())
    assert ("Instellingen", "box.name: Kluis → Kluis Noord") in changed.fields


def test_an_unknown_or_old_entry_is_still_told():
    told = audit_text.tell({"seq": 1, "time": "2026-12-07T16:05:00.000Z", "actor": "jan", "action": "future_thing",
                            "details": {"x": 1}}, _nl())
    assert told.sentence == "Jan de Vries: future_thing" and '"x": 1' in told.raw
    lacking = audit_text.tell({"seq": 2, "time": "t", "actor": "jan", "action": "user_add"}, _nl())
    assert lacking.sentence == "Jan de Vries voegde gebruiker ? toe"


def test_a_sentence_is_translated_with_the_same_placeholders():
    catalog = i18n.read_catalog("nl")
    for template in audit_text.SENTENCES.values():
        assert set(re.findall(r"%\((\w+)\)s", template)) == set(re.findall(r"%\((\w+)\)s", catalog.get(template).string))


def test_every_action_has_a_short_label_for_the_filter_and_the_trail():
    """The logboek's action filter and a recording's trail name an action by its short label; an action
    without one would show its code there."""
    assert set(audit_text.SENTENCES) <= set(audit_text.ACTION_LABELS)
