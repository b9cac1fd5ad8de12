"""Alerts that reach people: the box checks its own state every [alerts] check_minutes and tells the people of
each role by e-mail, in Dutch, when something needs them. An office without IT staff does not watch a
status page.

Each kind of alert is a condition read from the box's own state (the disk, the cameras' docks, the clock,
the requests register, the handovers, the audit log, the last backup, the archive sync, the device alerts,
the audit signing key that did not unseal from the TPM2).
An EPISODE (table alert_episodes) opens when a condition starts and closes when it has ended: the box
mails about an episode at most once, however long it lasts or however often its cause repeats (a rogue
device that is refused a thousand times is one episode per kind and camera). Against flapping, an episode
closes only after its condition has been absent for QUIET, and the disk's closes only above its threshold
plus HYSTERESIS_PERCENT. Some kinds have a grace (`due_at`): archive sync is mailed only when it has failed
for [alerts] sync_failing_hours, the clock after CLOCK_GRACE (it needs a while after a boot).

Addresses are given per role ([alerts] keeper, privacy_officer, team_leader, auditor); those also listed in
[alerts] digest get one mail a day instead (at digest_time, only when there is something to report). Every
signed audit checkpoint goes to [alerts] checkpoints, so that a third place holds it (appliance/audit.py).
The log collector (appliance/log_collector.py) gets every episode's opening and closing too.
Each mail sent is on record (audit action alert_mail: kind and recipients, no more).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path
from shutil import disk_usage
from zoneinfo import ZoneInfo

from . import access_requests, audit, backup_targets, handover, keys, log_collector, mail, roles, todo, witness
from .backup_status import last_backup
from .box import Box
from .canonical import canonical
from .clock import from_iso, to_iso
from .config_models import AlertsSettings
from .dock import devices
from .errors import KluisError

log = logging.getLogger("kluis.alerts")

DISK_FULL, NOT_DOCKED, CLOCK, REQUEST_DUE, HANDOVER_WAITING = (
    "disk_full", "not_docked", "clock_unsynced", "request_due", "handover_waiting")
BACKUP_OVERDUE, AUDIT_FAILING, SYNC_FAILING, DEVICE_ALERT, BACKUP_FAILING = (
    "backup_overdue", "audit_failing", "sync_failing", "device_alert", "backup_failing")
SIGNING_KEY = "signing_key_unavailable"  # the signing key sealed to the TPM2 did not unseal (appliance.keys)

QUIET = timedelta(minutes=30)        # a condition absent this long ends its episode
HYSTERESIS_PERCENT = 2               # the disk's episode ends only with this much more free than its threshold
CLOCK_GRACE = timedelta(minutes=30)  # NTP needs a while after a boot
DEVICE_WINDOW = timedelta(hours=24)  # device alerts of one kind and camera within this are one episode
META_VERIFIED = "alerts_audit_verified"     # the last scheduled chain check: {"at", "ok", "first_bad", "problem"}
META_CHECKPOINT_MAILED = "mail_checkpoint_id"  # the last audit_checkpoints.id mailed to [alerts] checkpoints
CHECKPOINTS_PER_MAIL = 200
_faults: dict[str, str] = {}  # what last failed, per mail, syslog or a check's reader, in this process


@dataclass(frozen=True)
class Kind:
    title: str              # the mail's subject, Dutch
    advice: str             # what to do, Dutch
    roles: tuple[str, ...]  # who is told


KINDS: dict[str, Kind] = {
    DISK_FULL: Kind("Schijf bijna vol",
                    "Controleer de bewaartermijnen en de opslag; als de schijf vol is, neemt de Kluis geen "
                    "opnames meer aan en blijven ze op de camera's staan.", (roles.KEEPER,)),
    NOT_DOCKED: Kind("Camera niet in het dock",
                     "Zorg dat de camera wordt teruggezet in het dock, zodat de opnames worden opgeslagen.",
                     (roles.KEEPER, roles.TEAM_LEADER)),
    CLOCK: Kind("Klok niet gesynchroniseerd",
                "Controleer de tijdsynchronisatie (NTP) van de Kluis: opnames krijgen tot dan een "
                "tijdstip waarvoor de Kluis niet kan instaan.", (roles.KEEPER,)),
    REQUEST_DUE: Kind("Verzoek nadert de termijn",
                      "Beantwoord het verzoek op tijd (Verzoeken in de webinterface).", (roles.PRIVACY_OFFICER,)),
    HANDOVER_WAITING: Kind("Overdracht wacht op goedkeuring",
                           "Keur de overdracht goed of wijs hem af (Overdrachten in de webinterface).",
                           (roles.PRIVACY_OFFICER,)),
    BACKUP_OVERDUE: Kind("Back-up te lang geleden",
                         "Sluit de back-upschijf aan of controleer de back-up; zonder back-up gaan bij een "
                         "defecte schijf opnames verloren.", (roles.KEEPER,)),
    BACKUP_FAILING: Kind("Back-up mislukt",
                         "Controleer het back-updoel (Instellingen, Back-up: 'Verbinding testen'); de andere "
                         "back-ups gaan door, maar dit doel loopt achter.", (roles.KEEPER,)),
    AUDIT_FAILING: Kind("Controle van het logboek mislukt",
                        "Het logboek is mogelijk gewijzigd. Voer 'kluis audit verify' uit en meld dit bij de "
                        "privacybeheerder en de auditor.", (roles.KEEPER, roles.PRIVACY_OFFICER, roles.AUDITOR)),
    SYNC_FAILING: Kind("Synchronisatie met het archief mislukt",
                       "Controleer de verbinding met het centrale archief (Instellingen, Synchronisatie).",
                       (roles.KEEPER,)),
    DEVICE_ALERT: Kind("Melding van een camera",
                       "Bekijk de meldingen op de pagina Camera's; een onbekend apparaat kan zich als camera "
                       "voordoen.", (roles.KEEPER,)),
    SIGNING_KEY: Kind("Ondertekeningssleutel van de Kluis niet beschikbaar",
                      "De sleutel waarmee de Kluis zijn logboek en zijn verzoeken aan camera's ondertekent, is "
                      "verzegeld in de TPM2 maar ging niet open. De Kluis draait door, maar leest geen camera's "
                      "uit (de opnames blijven veilig op de camera staan) en nieuwe logboekregels blijven "
                      "ongetekend tot de sleutel terug is. Zet de Kluis terug uit de laatste back-up "
                      "('kluis restore'); zie de handleiding, 'The audit signing key'.",
                      (roles.KEEPER, roles.PRIVACY_OFFICER, roles.AUDITOR)),
}


@dataclass(frozen=True)
class Condition:
    kind: str
    subject: str   # '' for the box as a whole
    detail: str    # Dutch, for the mail


# Reading the box's state -----------------------------------------------------------------------------------

def _local(box: Box, moment: datetime | str) -> str:
    moment = from_iso(moment) if isinstance(moment, str) else moment
    return moment.astimezone(ZoneInfo(box.settings.box.timezone)).strftime("%d-%m-%Y %H:%M")


def disk(box: Box, was_open: bool) -> list[Condition]:
    usage = disk_usage(box.data_dir)
    free = 100 * usage.free / usage.total if usage.total else 100
    limit = box.settings.alerts.disk_free_percent + (HYSTERESIS_PERCENT if was_open else 0)
    if free >= limit:
        return []
    return [Condition(DISK_FULL, "", f"Er is nog {free:.1f}% vrij op de gegevensschijf "
                                     f"({usage.free / 2**30:.1f} GiB van {usage.total / 2**30:.1f} GiB).")]


def not_docked(box: Box) -> list[Condition]:
    days = box.settings.alerts.not_docked_days
    before = to_iso(box.clock() - timedelta(days=days))
    found = []
    for cam in devices.paired_devices(box.catalog):
        last = devices.last_docked(box.catalog, cam["serial"]) or cam["paired_at"] or cam["last_seen"]
        if last and last < before:
            who = f" ({cam['officer']})" if cam.get("officer") else ""
            found.append(Condition(NOT_DOCKED, cam["serial"], f"Camera {cam['serial']}{who} is sinds "
                                   f"{_local(box, last)} niet in het dock geweest (meer dan {days} dagen)."))
    return found


def clock_unsynced() -> list[Condition]:
    from . import timesync

    state = timesync.status()
    if state.synchronized:
        return []
    why = "niet gesynchroniseerd" if state.synchronized is False else "niet bekend of ze gesynchroniseerd is"
    return [Condition(CLOCK, "", f"De klok van de Kluis is {why} ({state.source}: {state.detail}).")]


def _day(iso_date: str) -> str:
    return date.fromisoformat(iso_date).strftime("%d-%m-%Y")


REQUEST_WORDS = {"access_request": "Inzageverzoek", "objection": "Bezwaar", "complaint": "Klacht"}


def requests_due(box: Box) -> list[Condition]:
    found = []
    for row in access_requests.due_soon(box):
        left = row["days_left"]
        when = (f"de termijn is {-left} dag(en) verstreken" if left < 0 else
                f"nog {left} dag(en)")
        what = REQUEST_WORDS.get(row["kind"], "Verzoek")
        found.append(Condition(REQUEST_DUE, row["ref"], f"{what} {row['ref']} moet uiterlijk {_day(row['deadline'])} "
                               f"beantwoord zijn: {when}."))
    return found


def handovers_waiting(box: Box) -> list[Condition]:
    return [Condition(HANDOVER_WAITING, h["id"], f"Overdracht {h['id']} (zaak {h['case_ref']}) aan {h['receiver']}, "
                      f"voorbereid door {h['prepared_by']} op {_local(box, h['prepared_at'])}, wacht op goedkeuring.")
            for h in handover.list_handovers(box, state=handover.PREPARED)]


def backup_overdue(box: Box) -> list[Condition]:
    days = box.settings.alerts.backup_overdue_days
    if not days:
        return []
    newest = last_backup(box)
    last = to_iso(newest.at) if newest else None
    since = last or box.catalog.get_meta("created_at")
    if not since or since >= to_iso(box.clock() - timedelta(days=days)):
        return []
    what = f"De laatste back-up is van {_local(box, last)}" if last else "Er is nog nooit een back-up gemaakt"
    return [Condition(BACKUP_OVERDUE, "", f"{what}: langer dan {days} dagen geleden.")]


def backup_failing(box: Box) -> list[Condition]:
    """A configured backup target whose last run failed (not one that was merely not plugged in): one
    episode per target, over when a run there succeeds."""
    found = []
    failures = audit.entries(box.catalog, action="backup_failed", newest_first=True, limit=200)
    for target in backup_targets.configured(box):
        failed = next((e for e in failures if e["details"].get("target") == target.where), None)
        if failed is None:
            continue
        ok = last_backup(box, target=target.where)
        if ok is not None and to_iso(ok.at) >= failed["time"]:
            continue
        found.append(Condition(BACKUP_FAILING, target.where, f"De back-up naar {target.where} is mislukt op "
                               f"{_local(box, failed['time'])}: {failed['details'].get('error', '')}"))
    return found


def verify_audit(box: Box) -> dict:
    """The chain check the job runs every [alerts] verify_hours (not on record: it changes nothing and
    would otherwise fill the log it checks); its outcome is kept for the next checks."""
    from nacl.signing import VerifyKey

    last = box.catalog.get_meta(META_VERIFIED)
    state = json.loads(last) if last else None
    if state and from_iso(state["at"]) > box.clock() - timedelta(hours=box.settings.alerts.verify_hours):
        return state
    # with the archive's witness statements: a rewrite re-signed with the box's own key fails only there
    report = witness.verify(box.catalog, VerifyKey(bytes.fromhex(box.catalog.required_meta("signing_public_key"))))
    state = {"at": box.now_iso(), "ok": report.ok, "first_bad": report.first_bad,
             "problem": report.problems[0] if report.problems else None, "count": report.count}
    box.catalog.set_meta(META_VERIFIED, json.dumps(state))
    return state


def audit_failing(box: Box) -> list[Condition]:
    state = verify_audit(box)
    if state["ok"]:
        return []
    where = f" vanaf regel {state['first_bad']}" if state["first_bad"] else ""
    return [Condition(AUDIT_FAILING, "", f"De controle van het logboek ({_local(box, state['at'])}) vond een "
                                         f"fout{where}: {state['problem']}")]


def sync_failing(box: Box) -> list[Condition]:
    tasks = todo.sync_failing(box)
    if not tasks or not tasks[0].count:
        return []
    first = tasks[0].entries[0].get("last_error") if tasks[0].entries else ""
    return [Condition(SYNC_FAILING, "", f"De synchronisatie met het centrale archief mislukt "
                                        f"({tasks[0].count} fout(en)); de laatste: {first}")]


def device_alerts(box: Box) -> list[Condition]:
    since = to_iso(box.clock() - DEVICE_WINDOW)
    rows = box.catalog.db.execute(
        "SELECT kind, coalesce(serial, ''), count(*), max(at), (SELECT message FROM device_alerts d2 WHERE "
        "d2.kind = d.kind AND coalesce(d2.serial, '') = coalesce(d.serial, '') ORDER BY id DESC LIMIT 1) "
        "FROM device_alerts d WHERE at >= ? GROUP BY kind, coalesce(serial, '') ORDER BY kind", [since]).fetchall()
    return [Condition(DEVICE_ALERT, f"{kind}:{serial}",
                      f"{count} melding(en) '{kind}'" + (f" over camera {serial}" if serial else "")
                      + f" sinds {_local(box, since)}, de laatste om {_local(box, last)}: {message}")
            for kind, serial, count, last, message in rows]


def signing_key_unavailable() -> list[Condition]:
    why = keys.signing_key_unavailable()
    if why is None:
        return []
    return [Condition(SIGNING_KEY, "", f"De TPM2 gaf de verzegelde ondertekeningssleutel niet vrij: {why}")]


def conditions(box: Box) -> tuple[list[Condition], set[str]]:
    """Every condition that holds now, and the kinds whose reader failed (their open episodes stay open: a
    reader that breaks is not a condition that ended). A failing reader is logged with its traceback once,
    not at every check; the others still count."""
    open_kinds = {row[0] for row in box.catalog.db.execute("SELECT kind FROM alert_episodes WHERE closed_at IS NULL")}
    readers = [(DISK_FULL, lambda: disk(box, DISK_FULL in open_kinds)), (NOT_DOCKED, lambda: not_docked(box)),
               (CLOCK, clock_unsynced), (REQUEST_DUE, lambda: requests_due(box)),
               (HANDOVER_WAITING, lambda: handovers_waiting(box)), (BACKUP_OVERDUE, lambda: backup_overdue(box)),
               (AUDIT_FAILING, lambda: audit_failing(box)), (SYNC_FAILING, lambda: sync_failing(box)),
               (DEVICE_ALERT, lambda: device_alerts(box)), (BACKUP_FAILING, lambda: backup_failing(box)),
               (SIGNING_KEY, signing_key_unavailable)]
    found: list[Condition] = []
    failed: set[str] = set()
    for kind, reader in readers:
        try:
            found += reader()
            _faults.pop(f"check {kind}", None)
        except Exception as exc:  # one broken reader must not silence the other alerts
            failed.add(kind)
            if f"check {kind}" not in _faults:
                log.exception("alerts: the check of %s failed", kind)
            _faults[f"check {kind}"] = str(exc)
    return found, failed


# Episodes ---------------------------------------------------------------------------------------------------

def _grace(box: Box, kind: str) -> timedelta:
    if kind == SYNC_FAILING:
        return timedelta(hours=box.settings.alerts.sync_failing_hours)
    return CLOCK_GRACE if kind == CLOCK else timedelta(0)


def update_episodes(box: Box, found: list[Condition], unknown: Collection[str] = ()) -> tuple[list[int], list[int]]:
    """Open an episode for each new condition, refresh those that go on, close those absent for QUIET
    (but those of the `unknown` kinds, whose reader failed). Returns (opened ids, closed ids)."""
    now = box.clock()
    now_iso = to_iso(now)
    db = box.catalog.db
    current = {(c.kind, c.subject): c for c in found}
    opened, closed = [], []
    with box.catalog.transaction():
        episodes = {(r["kind"], r["subject"]): r for r in db.query(
            "SELECT id, kind, subject, seen_at, due_at FROM alert_episodes WHERE closed_at IS NULL")}
        for key, cond in current.items():
            if key in episodes:
                db.execute("UPDATE alert_episodes SET seen_at = ?, detail = ? WHERE id = ?",
                           [now_iso, cond.detail, episodes[key]["id"]])
                continue
            cur = db.execute("INSERT INTO alert_episodes (kind, subject, detail, opened_at, due_at, seen_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             [cond.kind, cond.subject, cond.detail, now_iso, to_iso(now + _grace(box, cond.kind)),
                              now_iso])
            opened.append(int(cur.lastrowid or 0))
            log.warning("alert %s%s: %s", cond.kind, f" [{cond.subject}]" if cond.subject else "", cond.detail)
        for key, row in episodes.items():
            if key in current or row["kind"] in unknown or from_iso(row["seen_at"]) > now - QUIET:
                continue
            # One that ends before it was due was never told: it stays untold, also to the log collector.
            untold = row["due_at"] > now_iso
            db.execute("UPDATE alert_episodes SET closed_at = ?, syslog_open = syslog_open OR ?, "
                       "syslog_close = syslog_close OR ? WHERE id = ?", [now_iso, int(untold), int(untold), row["id"]])
            closed.append(row["id"])
            log.info("alert %s%s ended", row["kind"], f" [{row['subject']}]" if row["subject"] else "")
    return opened, closed


def open_episodes(box: Box) -> list[dict]:
    """The open episodes, oldest first (`kluis alerts list`, the settings page)."""
    return list(box.catalog.db.query("SELECT id, kind, subject, detail, opened_at, due_at, seen_at, mailed_at "
                                     "FROM alert_episodes WHERE closed_at IS NULL ORDER BY opened_at, id"))


# Who is told ------------------------------------------------------------------------------------------------

ROLE_FIELDS = {roles.KEEPER: "keeper", roles.PRIVACY_OFFICER: "privacy_officer", roles.TEAM_LEADER: "team_leader",
               roles.AUDITOR: "auditor"}


def addresses_for(cfg: AlertsSettings, kind: str) -> list[str]:
    """Every address of the roles the kind tells, in the order configured, once each."""
    found: list[str] = []
    for role in KINDS[kind].roles:
        for address in getattr(cfg, ROLE_FIELDS[role]):
            if address.lower() not in (a.lower() for a in found):
                found.append(address)
    return found


def kinds_for(cfg: AlertsSettings, address: str) -> set[str]:
    return {kind for kind in KINDS if address.lower() in (a.lower() for a in addresses_for(cfg, kind))}


def _digest_addresses(cfg: AlertsSettings) -> set[str]:
    return {a.lower() for a in cfg.digest}


def _subject(box: Box, title: str) -> str:
    return f"[Kluis {box.settings.box.name}] {title}"


def _footer(box: Box) -> str:
    return ("\n\n-- \nDit bericht is automatisch verstuurd door de Kluis "
            f"'{box.settings.box.name}'{', ' + box.settings.box.municipality if box.settings.box.municipality else ''}."
            "\nU krijgt één bericht per melding; de openstaande meldingen toont 'kluis alerts list'.\n"
            "Wie deze berichten krijgt, stelt de beheerder in op de pagina Instellingen.\n")


def episode_mail(box: Box, episode: dict) -> tuple[str, str]:
    kind = KINDS[episode["kind"]]
    body = (f"De Kluis '{box.settings.box.name}' meldt: {kind.title.lower()}.\n\n{episode['detail']}\n\n"
            f"Sinds: {_local(box, episode['opened_at'])}\nWat te doen: {kind.advice}" + _footer(box))
    title = kind.title + (f": {episode['subject']}" if episode["subject"] and episode["kind"] != DEVICE_ALERT else "")
    return _subject(box, title), body


def _record_mail(box: Box, what: str, to: list[str], **details) -> None:
    with box.catalog.transaction():
        audit.record(box.catalog, actor="system", action="alert_mail", clock=box.clock,
                     details={"what": what, "to": to, **details})


def mail_episodes(box: Box) -> int:
    """One mail for each episode that is due and not yet mailed, to its roles' addresses but the digest
    ones. Returns how many went out; a failure is logged once and retried at the next check."""
    cfg = box.settings.alerts
    if not mail.configured(cfg):
        return 0
    digest = _digest_addresses(cfg)
    sent = 0
    due = box.catalog.db.query("SELECT * FROM alert_episodes WHERE closed_at IS NULL AND mailed_at IS NULL "
                               "AND due_at <= ? ORDER BY id", [box.now_iso()])
    for episode in list(due):
        to = [a for a in addresses_for(cfg, episode["kind"]) if a.lower() not in digest]
        if not to:
            continue
        subject, body = episode_mail(box, episode)
        # Marked before it is sent, so that an episode is never mailed twice (also when the catalog cannot
        # be written after the send); a send that fails is unmarked and tried again at the next check.
        with box.catalog.transaction():
            box.catalog.db.execute("UPDATE alert_episodes SET mailed_at = ? WHERE id = ?",
                                   [box.now_iso(), episode["id"]])
        try:
            refused = mail.send(cfg, mail.message(cfg, to, subject, body))
        except mail.MailError as exc:
            with box.catalog.transaction():
                box.catalog.db.execute("UPDATE alert_episodes SET mailed_at = NULL WHERE id = ?", [episode["id"]])
            _fault("mail", f"alert mail about {episode['kind']} not sent: {exc}")
            return sent  # the server is the problem: the next check tries again
        _record_mail(box, episode["kind"], to, episode=episode["id"], refused=refused or None)
        sent += 1
    return sent


def _digest_moment(box: Box, cfg: AlertsSettings) -> datetime:
    """Today's digest time (local), or yesterday's when it has not come yet today."""
    zone = ZoneInfo(box.settings.box.timezone)
    local = box.clock().astimezone(zone)
    moment = datetime.combine(local.date(), dtime.fromisoformat(cfg.digest_time), zone)
    return moment if moment <= local else moment - timedelta(days=1)


def digest_body(box: Box, kinds: set[str], since: str | None) -> str | None:
    """What the digest tells: the open episodes of these kinds and those closed since `since`; None: nothing."""
    db = box.catalog.db
    now = box.now_iso()
    opened = [e for e in db.query("SELECT * FROM alert_episodes WHERE closed_at IS NULL AND due_at <= ? "
                                  "ORDER BY opened_at, id", [now]) if e["kind"] in kinds]
    ended = [e for e in db.query("SELECT * FROM alert_episodes WHERE closed_at IS NOT NULL AND closed_at > ? "
                                 "AND due_at < closed_at ORDER BY closed_at, id", [since or ""])
             if e["kind"] in kinds]
    if not opened and not ended:
        return None
    lines = [f"Overzicht van de Kluis '{box.settings.box.name}' op {_local(box, now)}.", ""]
    lines.append(f"Openstaande meldingen ({len(opened)}):" if opened else "Geen openstaande meldingen.")
    for e in opened:
        lines.append(f"- {KINDS[e['kind']].title} (sinds {_local(box, e['opened_at'])}): {e['detail']}")
    if ended:
        lines += ["", f"Opgelost sinds het vorige overzicht ({len(ended)}):"]
        lines += [f"- {KINDS[e['kind']].title} ({_local(box, e['opened_at'])} tot {_local(box, e['closed_at'])}): "
                  f"{e['detail']}" for e in ended]
    return "\n".join(lines) + _footer(box)


def send_digests(box: Box) -> int:
    """The daily digest for each [alerts] digest address whose digest time has passed since its last one."""
    cfg = box.settings.alerts
    if not (mail.configured(cfg) and cfg.digest):
        return 0
    moment = to_iso(_digest_moment(box, cfg))
    sent = 0
    for address in cfg.digest:
        row = box.catalog.db.execute("SELECT sent_at FROM alert_digests WHERE address = ?",
                                     [address.lower()]).fetchone()
        if row and row[0] >= moment:
            continue
        body = digest_body(box, kinds_for(cfg, address), row[0] if row else None)
        if body is not None:
            try:
                mail.send(cfg, mail.message(cfg, [address], _subject(box, "Dagelijks overzicht van meldingen"), body))
            except mail.MailError as exc:
                _fault("mail", f"alert digest to {address} not sent: {exc}")
                return sent
            _record_mail(box, "digest", [address])
            sent += 1
        with box.catalog.transaction():
            box.catalog.db.execute("INSERT INTO alert_digests (address, sent_at) VALUES (?, ?) ON CONFLICT(address) "
                                   "DO UPDATE SET sent_at = excluded.sent_at", [address.lower(), box.now_iso()])
    return sent


def mail_checkpoints(box: Box) -> int:
    """Every signed checkpoint not yet mailed, to [alerts] checkpoints: the body says what it is, the
    attachment is the checkpoints as `kluis audit verify --checkpoint` reads them (JSON Lines)."""
    cfg = box.settings.alerts
    if not (mail.configured(cfg) and cfg.checkpoints):
        return 0
    after = int(box.catalog.get_meta(META_CHECKPOINT_MAILED, "0"))
    rows = list(box.catalog.db.query("SELECT id, count, head, time, signer, signature FROM audit_checkpoints "
                                     "WHERE id > ? ORDER BY id LIMIT ?", [after, CHECKPOINTS_PER_MAIL]))
    if not rows:
        return 0
    cps = [log_collector.exported(r) for r in rows]
    text = "".join(canonical(cp).decode() + "\n" for cp in cps)
    last = cps[-1]
    body = (f"De Kluis '{box.settings.box.name}' heeft het logboek ondertekend: {len(cps)} controlepunt(en), het "
            f"laatste over {last['count']} regels (om {_local(box, last['time'])}).\n\n"
            "Bewaar dit bericht: met deze controlepunten kan later worden aangetoond dat het logboek niet is "
            "ingekort of herschreven ('kluis audit verify --checkpoint BESTAND' met de bijlage).\n\n"
            f"Sleutel van de Kluis (Ed25519): {last['signer']}\n\n{text}" + _footer(box))
    try:
        mail.send(cfg, mail.message(cfg, list(cfg.checkpoints), _subject(box, "Ondertekend controlepunt van het "
                                                                         "logboek"), body,
                                    attachment=(f"kluis-controlepunten-{last['count']}.jsonl", text)))
    except mail.MailError as exc:
        _fault("mail", f"audit checkpoint mail not sent: {exc}")
        return 0
    with box.catalog.transaction():
        box.catalog.set_meta(META_CHECKPOINT_MAILED, str(rows[-1]["id"]))
    _record_mail(box, "checkpoint", list(cfg.checkpoints), count=last["count"])
    return len(cps)


# The job ----------------------------------------------------------------------------------------------------

def _fault(channel: str, message: str | None) -> None:
    """One log line when a channel (mail, syslog) starts failing or fails differently, and one when it works
    again: a mail server away for a day is not 288 warnings."""
    before = _faults.pop(channel, None)
    if message is not None:
        _faults[channel] = message
        if message != before:
            log.warning("%s", message)
    elif before is not None:
        log.info("%s works again", channel)


@dataclass
class CheckResult:
    opened: list[int]
    closed: list[int]
    mailed: int
    digests: int
    checkpoints: int
    forwarded: log_collector.Forwarded


def check(box: Box) -> CheckResult:
    """One round: read the conditions, update the episodes, mail what is due, forward to the collector."""
    opened, closed = update_episodes(box, *conditions(box))
    mailed = mail_episodes(box)
    digests = send_digests(box)
    checkpoints = mail_checkpoints(box)
    if mailed or digests or checkpoints:
        _fault("mail", None)
    forwarded = log_collector.forward(box)
    if forwarded.error:
        _fault("syslog", f"log collector: {forwarded.error} (sent from entry {forwarded.cursor + 1} when it is back)")
    elif forwarded.audit or forwarded.checkpoints or forwarded.alerts:
        _fault("syslog", None)
    return CheckResult(opened, closed, mailed, digests, checkpoints, forwarded)


def run_check(data_dir: Path, clock=None) -> CheckResult | None:
    """The scheduled check, on its own connection (APScheduler runs it in a worker thread)."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            return check(box)
    except sqlite3.OperationalError as exc:  # a full disk or a busy catalog: expected, the next check retries
        log.warning("alerts check: the catalog could not be written (%s); retried at the next check", exc)
        return None
    except Exception:  # a failed check must not stop the scheduler; the next one retries
        log.exception("alerts check failed")
        return None


def schedule(scheduler, box: Box):
    """Add the check (every [alerts] check_minutes, and at start) to an APScheduler scheduler."""
    from datetime import timezone

    from . import config as config_mod

    minutes = config_mod.load(box.data_dir).alerts.check_minutes
    return scheduler.add_job(run_check, "interval", minutes=minutes, args=[box.data_dir, box.clock],
                             id="alerts_check", next_run_time=datetime.now(timezone.utc), max_instances=1,
                             coalesce=True, replace_existing=True)


# The keeper's test ------------------------------------------------------------------------------------------

def send_test(box: Box, actor: str, client: str | None = None) -> dict[str, str | None]:
    """A test mail to every configured address and a test line to the log collector; on record as
    alerts_test. Returns {"mail": None | error | "off", "syslog": ...}."""
    cfg = box.settings.alerts
    outcome: dict[str, str | None] = {}
    to: list[str] = []
    for field in (*ROLE_FIELDS.values(), "checkpoints"):
        to += [a for a in getattr(cfg, field) if a.lower() not in (b.lower() for b in to)]
    if not mail.configured(cfg) or not to:
        outcome["mail"] = "off"
    else:
        body = (f"Dit is een testbericht van de Kluis '{box.settings.box.name}', verstuurd door {actor}.\n\n"
                "Komt dit bericht aan, dan bereiken meldingen van de Kluis u per e-mail.\n\nUw adres staat bij: "
                + "; ".join(f"{field}: {', '.join(getattr(cfg, field))}" for field in (*ROLE_FIELDS.values(),
                                                                                        "checkpoints", "digest")
                            if getattr(cfg, field)) + _footer(box))
        try:
            refused = mail.send(cfg, mail.message(cfg, to, _subject(box, "Testbericht"), body))
            outcome["mail"] = f"refused: {', '.join(refused)}" if refused else None
        except mail.MailError as exc:
            outcome["mail"] = str(exc)
    if not box.settings.syslog.server:
        outcome["syslog"] = "off"
    else:
        try:
            log_collector.send_test(box.settings.syslog, actor, box.settings.box.name, box.now_iso())
            outcome["syslog"] = None
        except KluisError as exc:
            outcome["syslog"] = str(exc)
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="alerts_test", client=client, clock=box.clock,
                     details={"to": to, "mail": outcome["mail"] or "ok", "syslog": outcome["syslog"] or "ok"})
    return outcome

