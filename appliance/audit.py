"""The audit log (logboek): every event that touches footage or its governance, append-only and
tamper-evident.

Each entry carries the SHA-256 of the previous one (a hash chain) and its own hash over a canonical
encoding of all its fields, so editing, deleting, inserting or reordering entries breaks the chain at
the first bad entry. The chain alone cannot show a cut-off tail, nor a log rewritten and re-hashed as a
whole: for that the box signs checkpoints (entry count, head hash, time) with its Ed25519 key at a fixed
interval and on shutdown. Checkpoints are kept in their own table and exported to files, so that an
outside party (later the central archive) can hold the box to them.

Each entry is also signed on its own (kind kluis/v1/audit-entry, over its hash) as it is written: a log
re-hashed from a changed entry on is consistent in itself, and between two checkpoints only these
signatures tell which entry was the first one changed. Whoever holds the key can re-sign too, so they
narrow a change down; the checkpoints held outside the box are what prove one.

Appending takes the chain head inside a BEGIN IMMEDIATE transaction, so that several processes (the
service and a CLI command) append without forking the chain; call `record` inside the same transaction
as the change it records, so that the change and its entry commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, TextIO, overload

from nacl.signing import SigningKey, VerifyKey

from . import audit_prunes, csv_columns, signing, spreadsheet
from .canonical import canonical
from .clock import system_clock, to_iso
from .errors import KluisError

GENESIS = "0" * 64  # the prev_hash of entry 1
CHECKPOINT_TYPE = "kluis-audit-checkpoint"
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
COLUMNS = ("seq", "time", "actor", "action", "recording_id", "purpose", "case_ref", "client", "details",
           "prev_hash", "hash")  # the hashed fields (and the hash); `signature` is over the hash, outside them
STORED = (*COLUMNS, "signature")
BACKLOG_BATCH = 2000  # unsigned entries one checkpoint signs at most (about 0.1 s of signing, lock held)



def entry_hash(entry: dict) -> str:
    """SHA-256 over every field of an entry but its own hash, prev_hash included."""
    body = {name: entry.get(name) for name in COLUMNS if name != "hash"}
    return hashlib.sha256(b"kluis-audit-v1\n" + canonical(body)).hexdigest()


def sign_entry(signing_key: SigningKey, entry_hash_hex: str) -> str:
    """An entry's own signature, hex: over label || "\n" || its hash as 64 ASCII hex characters."""
    return signing.sign(signing_key, signing.AUDIT_ENTRY, entry_hash_hex.encode("ascii"))


def entry_signature_valid(verify_key: VerifyKey, entry_hash_hex: str, signature: str) -> bool:
    return signing.is_valid(verify_key, signing.AUDIT_ENTRY, entry_hash_hex.encode("ascii"), signature)


def _signer(catalog) -> SigningKey | None:
    """The key record() signs with: the catalog's `audit_key`, a SigningKey or a callable that returns one
    (Box hands its catalog a loader that reads the key file once, on the first entry). None, or a key that
    cannot be read, leaves the entry unsigned: recording never fails for want of the key (an audit entry
    must land before the action it records), and the next checkpoint, made by the service that holds the
    key, signs it (checkpoint() below)."""
    key = getattr(catalog, "audit_key", None)
    if key is None or isinstance(key, SigningKey):
        return key
    try:
        return key()
    except KluisError:
        return None


def _now(catalog, clock=None) -> str:
    # The box hands its clock to its catalog (Box.__init__), so tests that control time control this.
    return to_iso((clock or getattr(catalog, "clock", None) or system_clock)())


def record(catalog, *, actor: str, action: str, recording_id: str | None = None, purpose: str | None = None,
           case_ref: str | None = None, client: str | None = None, details: dict | None = None,
           clock=None) -> int:
    """Append one entry; returns its sequence number."""
    if not actor:
        raise ValueError("an audit entry needs an actor")
    if not ACTION_RE.match(action or ""):
        raise ValueError(f"audit action must be a short snake_case word, not {action!r}")
    entry: dict[str, Any] = {
        "time": _now(catalog, clock),
        "actor": str(actor),
        "action": action,
        "recording_id": recording_id,
        "purpose": purpose,
        "case_ref": case_ref,
        "client": client,
        "details": canonical(details).decode("utf-8") if details is not None else None,
    }
    db = catalog.db
    key = _signer(catalog)  # outside the transaction: a first use reads the key file
    with catalog.transaction():
        head = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        entry["seq"], entry["prev_hash"] = (head[0] + 1, head[1]) if head else (1, GENESIS)
        entry["hash"] = entry_hash(entry)
        entry["signature"] = sign_entry(key, entry["hash"]) if key is not None else None
        db.execute(
            f"INSERT INTO audit_log ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})",
            [entry[name] for name in STORED],
        )
    return entry["seq"]


def head(catalog) -> tuple[int, str]:
    """(number of entries, hash of the last one)."""
    row = catalog.db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


# Reading ----------------------------------------------------------------------------------------------

def entries(catalog, *, recording_id: str | None = None, since: str | None = None, until: str | None = None,
            actor: str | None = None, action: str | None = None, limit: int | None = None,
            newest_first: bool = False, after_seq: int | None = None, case_ref: str | None = None) -> list[dict]:
    """Entries matching every filter given (times as stored ISO strings), oldest first by default;
    `after_seq`: only those after that entry."""
    where: list[str] = []
    params: list[str | int] = []
    for column, op, value in (("recording_id", "=", recording_id), ("time", ">=", since), ("time", "<", until),
                              ("actor", "=", actor), ("action", "=", action), ("seq", ">", after_seq),
                              ("case_ref", "=", case_ref)):
        if value is not None:
            # A case reference matches as its case does (capitals aside; appliance/cases.py), by its index.
            where.append(f"{column} {op} ?" + (" COLLATE NOCASE" if column == "case_ref" else ""))
            params.append(value)
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = list(catalog.db.query(sql, params))
    for row in rows:
        row["details"] = json.loads(row["details"]) if row["details"] else None
    return rows


def signatures(catalog, seqs: list[int]) -> dict[int, str | None]:
    """Each entry's own signature (hex; None while no checkpoint has signed it yet), by seq."""
    found: dict[int, str | None] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        found.update(catalog.db.execute(
            f"SELECT seq, signature FROM audit_log WHERE seq IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    return found


def each_entry(catalog, *, recording_id: str | None = None, since: str | None = None, until: str | None = None,
               actor: str | None = None, action: str | None = None, batch: int = 2000) -> Iterator[dict]:
    """Every entry matching the filters, oldest first, read `batch` at a time by seq (no cursor is held
    between batches, so a caller may write to the catalog, or wait on a slow reader, in between): a
    download of a million entries never holds them all in memory."""
    last = 0
    while True:
        rows = entries(catalog, recording_id=recording_id, since=since, until=until, actor=actor, action=action,
                       limit=batch, after_seq=last)
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]["seq"]


def page(catalog, *, recording_id: str | None = None, since: str | None = None, until: str | None = None,
         actor: str | None = None, action: str | None = None, after: tuple[str, int] | None = None,
         limit: int = 100) -> list[dict]:
    """One page of the log for reading, newest first by (time, seq), with keyset paging: `after` is the
    (time, seq) of the last entry of the previous page. Each filter has an index that also gives the order
    ((action, time), (actor, time), (recording_id, time), (time)), so a page costs the same with a million
    entries as with a hundred: no OFFSET, no sort of the matches."""
    where: list[str] = []
    params: list[str | int] = []
    for column, op, value in (("recording_id", "=", recording_id), ("actor", "=", actor), ("action", "=", action),
                              ("time", ">=", since), ("time", "<", until)):
        if value is not None:
            where.append(f"{column} {op} ?")
            params.append(value)
    if after is not None:
        # time <= t drives the index range; the rest only skips the few entries of the same millisecond
        where.append("time <= ? AND (time < ? OR seq < ?)")
        params += [after[0], after[0], after[1]]
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY time DESC, seq DESC LIMIT ?"
    params.append(limit)
    rows = list(catalog.db.query(sql, params))
    for row in rows:
        row["details"] = json.loads(row["details"]) if row["details"] else None
    return rows


def write_csv(rows: Iterable[dict], out: TextIO, tz: str, lang: str = "nl") -> int:
    """The log as CSV for the privacy officer, as Dutch Excel opens it (appliance.spreadsheet: times in
    the box's zone `tz` with their offset; details as JSON text), headed in `lang`
    (appliance.csv_columns); returns the number of rows."""
    return spreadsheet.write(out, csv_columns.headings(COLUMNS, lang), ([row.get(name) for name in COLUMNS]
                                                                        for row in rows), tz)


# Checkpoints ------------------------------------------------------------------------------------------

def _body(count: int, head_hash: str, time: str, signer: str) -> dict:
    return {"type": CHECKPOINT_TYPE, "v": 1, "signer": signer, "count": count, "head": head_hash, "time": time}


@overload
def checkpoint(catalog, signing_key: SigningKey, *, clock=None, force: Literal[True]) -> dict: ...
@overload
def checkpoint(catalog, signing_key: SigningKey, *, clock=None, force: bool = False) -> dict | None: ...
def checkpoint(catalog, signing_key: SigningKey, *, clock=None, force: bool = False) -> dict | None:
    """Sign (count, head hash, time) and store it; returns the checkpoint as exported. Without `force`,
    nothing is written when the log has not grown since the last checkpoint (returns None). Entries still
    unsigned are signed first (sign_backlog): the service that makes checkpoints holds the key."""
    signer = bytes(signing_key.verify_key).hex()
    with catalog.transaction():
        count, head_hash = head(catalog)
        last = catalog.db.execute("SELECT count FROM audit_checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        sign_backlog(catalog, signing_key)
        if last and last[0] == count and not force:
            return None
        body = _body(count, head_hash, _now(catalog, clock), signer)
        signature = signing.sign(signing_key, signing.AUDIT_CHECKPOINT, body)
        catalog.db.execute(
            "INSERT INTO audit_checkpoints (count, head, time, signer, signature) VALUES (?, ?, ?, ?, ?)",
            [count, head_hash, body["time"], signer, signature],
        )
    return {**body, "signature": signature}


def sign_backlog(catalog, signing_key: SigningKey, limit: int = BACKLOG_BATCH) -> int:
    """Sign up to `limit` unsigned entries, oldest first (those a process without the key wrote, and a log's
    entries from before entries were signed); returns how many. The checkpoint made with them vouches for
    the same entries at the same moment, so this adds no trust a checkpoint does not already give; an
    entry whose hash does not match its contents stays unsigned, for verify() to report."""
    rows = catalog.db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE signature IS NULL "
                              f"ORDER BY seq LIMIT ?", [limit]).fetchall()
    signed = [(sign_entry(signing_key, entry["hash"]), entry["seq"])
              for entry in (dict(zip(COLUMNS, values)) for values in rows) if entry_hash(entry) == entry["hash"]]
    if signed:
        catalog.db.conn.executemany("UPDATE audit_log SET signature = ? WHERE seq = ? AND signature IS NULL", signed)
    return len(signed)


def stored_checkpoints(catalog) -> list[dict]:
    rows = catalog.db.query("SELECT count, head, time, signer, signature FROM audit_checkpoints ORDER BY id")
    return [{**_body(r["count"], r["head"], r["time"], r["signer"]), "signature": r["signature"]} for r in rows]


def latest_checkpoint(catalog) -> dict | None:
    found = stored_checkpoints(catalog)
    return found[-1] if found else None


def export_checkpoints(checkpoints: Iterable[dict], path: Path) -> int:
    """Write checkpoints as JSON Lines (one canonical object per line); returns how many."""
    lines = [canonical(cp).decode("utf-8") for cp in checkpoints]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def load_checkpoints(path: Path) -> list[dict]:
    """Checkpoints from a file written by export_checkpoints (a single JSON object works too)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KluisError(f"cannot read {path}: {exc.strerror}") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise KluisError(f"{path}:{number}: not a checkpoint (invalid JSON)") from None
        if not isinstance(item, dict) or item.get("type") != CHECKPOINT_TYPE:
            raise KluisError(f"{path}:{number}: not a Kluis audit checkpoint")
        found.append(item)
    return found


def check_signature(cp: dict, verify_key: VerifyKey) -> str | None:
    """None if `cp` is a checkpoint signed by `verify_key`; else what is wrong."""
    try:
        body = _body(int(cp["count"]), str(cp["head"]), str(cp["time"]), str(cp["signer"]))
        signature = bytes.fromhex(cp["signature"])
    except (KeyError, TypeError, ValueError):
        return "malformed checkpoint"
    if cp["signer"] != bytes(verify_key).hex():
        return "signed by another key than this box's"
    if not signing.is_valid(verify_key, signing.AUDIT_CHECKPOINT, body, signature):
        return "signature does not match"
    return None


# Verification -----------------------------------------------------------------------------------------

@dataclass
class Report:
    count: int = 0                      # entries read
    checkpoints: int = 0                # valid checkpoints checked against the log
    anchored: int = 0                   # entries covered by the newest valid checkpoint
    first_bad: int | None = None        # sequence number of the first bad (or missing) entry...
    first_bad_upto: int | None = None   # ...or, when the evidence only narrows it to a range, its last entry
    # How the entries' own signatures bore on first_bad: "signature" (they name it exactly), "unsigned"
    # (entries in the range carry none: from before entries were signed, or stripped), "resigned" (all
    # in the range are validly signed: re-signed with the box's key), or "" (not needed or not asked).
    located_by: str = ""
    signatures_checked: int = 0         # entries whose own signature verify() checked
    unsigned_tail: int = 0              # entries after the newest checkpoint with no signature of their own
    pruned: int = 0                     # entries 1..pruned went under valid pruning checkpoints (audit_term)
    pruned_actions: dict[str, int] = field(default_factory=dict)  # how many of each action they were
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def where(self) -> str:
        """The first bad entry as shown: "11", or "1..30" when no signed checkpoint lies in between
        (a log rewritten and re-hashed from entry 11 on matches its old self up to entry 10, but only
        a checkpoint's signed head tells which entries are the old ones)."""
        if self.first_bad is None:
            return ""
        if self.first_bad_upto is None or self.first_bad_upto <= self.first_bad:
            return str(self.first_bad)
        return f"{self.first_bad}..{self.first_bad_upto}"

    def _bad(self, seq: int, what: str, upto: int | None = None) -> None:
        if self.first_bad is None or seq < self.first_bad:
            self.first_bad, self.first_bad_upto = seq, upto
        elif seq == self.first_bad and self.first_bad_upto is not None:
            # the same start seen again: keep the narrower of the two (an exact entry beats a range)
            self.first_bad_upto = None if upto is None else min(upto, self.first_bad_upto)
        if len(self.problems) < 50:
            self.problems.append(what)


def _rows(catalog, first: int = 1, last: int | None = None) -> Iterator[dict]:
    sql = f"SELECT {', '.join(STORED)} FROM audit_log WHERE seq >= ?"
    params = [first]
    if last is not None:
        sql += " AND seq <= ?"
        params.append(last)
    cursor = catalog.db.execute(sql + " ORDER BY seq", params)
    while batch := cursor.fetchmany(2000):
        for values in batch:
            yield dict(zip(STORED, values))


def _locate(catalog, verify_key: VerifyKey, report: Report) -> None:
    """Narrow a range the chain and checkpoints left (first_bad..first_bad_upto) with the entries' own
    signatures: entries signed as written up to the first whose signature does not match: that one is the
    first changed (a forger without the key cannot re-sign it). An unsigned entry before it widens the
    answer back to a range from that entry; all signed as written means the key itself re-signed them."""
    first, last = report.first_bad, report.first_bad_upto
    if first is None or last is None or last <= first:
        return
    unsigned = None
    for row in _rows(catalog, first, last):
        seq = row["seq"]
        if row["signature"] is None:
            unsigned = seq if unsigned is None else unsigned
            continue
        report.signatures_checked += 1
        if not entry_signature_valid(verify_key, row["hash"], row["signature"]):
            if unsigned is None:
                report.first_bad, report.first_bad_upto, report.located_by = seq, None, "signature"
                report.problems.append(f"entry {seq} changed: its signature does not match (entries {first}.."
                                       f"{seq - 1} are signed as written)" if seq > first else
                                       f"entry {seq} changed: its signature does not match")
            else:
                report.first_bad, report.first_bad_upto, report.located_by = unsigned, seq, "unsigned"
                report.problems.append(f"entry {seq}: its signature does not match; entries {unsigned}.."
                                       f"{seq - 1} carry no signature, so the first changed entry is "
                                       f"{_span(unsigned, seq)}")
            return
    if unsigned is not None:
        report.first_bad, report.located_by = unsigned, "unsigned"
        report.problems.append(f"entries {unsigned}..{last} carry no signature of their own (written before "
                               f"entries were signed, or stripped), so the first changed entry is "
                               f"{_span(unsigned, last)}")
    else:
        report.located_by = "resigned"
        report.problems.append(f"entries {first}..{last} all carry a valid signature by this box's key: they "
                               f"were signed again with it, so only a checkpoint held outside the box can "
                               f"narrow the change down")


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first >= last else f"one of entries {first}..{last}"


def verify(catalog, verify_key: VerifyKey, extra_checkpoints: Iterable[dict] = (),
           witnessed: Iterable[dict] = ()) -> Report:
    """Walk the chain and hold it to every checkpoint (stored ones and `extra_checkpoints`, e.g. from an
    exported file) and to every witnessed {count, head, witnessed_at} (the archive's counter-signed
    checkpoints, already checked by appliance.witness.anchors: the box's own key cannot re-sign those).
    Names the first bad entry, or the narrowest range the evidence allows; changes nothing.

    What each finding proves: an entry whose hash does not match its contents was changed itself; a link
    that breaks between entries k-1 and k means one of the two was changed (and re-hashed) or entries were
    removed or moved there; a log that differs from a signed checkpoint over c entries, after matching one
    over m entries, was rewritten somewhere in m+1..c (a chain re-hashed from the change on is consistent
    in itself, so no entry in between tells on its own)."""
    report = Report()
    anchors: dict[int, dict[str, str]] = {}  # count -> {head: time} of valid checkpoints
    witness: dict[int, tuple[str, str]] = {}  # count -> (head, time) the archive counter-signed
    for w in witnessed:
        count = int(w["count"])
        if count in witness and witness[count][0] != w["head"]:
            report._bad(1, f"witnessed checkpoints disagree on entry {count}")
        witness.setdefault(count, (w["head"], f"{w['witnessed_at']} (witnessed by the archive)"))
        anchors.setdefault(count, {}).setdefault(w["head"], witness[count][1])
    for origin, cps in (("stored", stored_checkpoints(catalog)), ("exported", list(extra_checkpoints))):
        for cp in cps:
            wrong = check_signature(cp, verify_key)
            if wrong:
                report.problems.append(f"{origin} checkpoint of {cp.get('time')} (count {cp.get('count')}): {wrong}")
                continue
            anchors.setdefault(int(cp["count"]), {}).setdefault(cp["head"], cp["time"])
    # Pruned entries (appliance/audit_term.py): the valid pruning checkpoints vouch for entries 1..last and
    # give the hash the chain goes on from. A checkpoint or witness over exactly a pruning boundary is held
    # to that boundary's hash; one over fewer entries can no longer be checked against the log (it was,
    # before the entries were pruned: pruning refuses a log that does not verify).
    pruned = audit_prunes.read(catalog, verify_key)
    report.pruned, report.pruned_actions = pruned.last, pruned.actions()
    report.problems.extend(pruned.problems)
    for count in [c for c in anchors if 0 < c <= pruned.last]:
        boundary = pruned.boundaries.get(count)
        witness.pop(count, None)
        for other, at in anchors.pop(count).items():
            if boundary is not None and other != boundary:
                report._bad(1, f"the checkpoint of {at} over {count} entries disagrees with the pruning checkpoint "
                               f"of entries up to {count}")
    report.checkpoints = len(anchors)
    ordered = sorted(anchors)

    prev_hash, expected = pruned.last_hash, pruned.last + 1
    matched = pruned.last  # highest checkpoint count up to which the log is the one signed
    # Past the newest checkpoint no signed head vouches for the entries: their own signatures do (a tail
    # rewritten and re-hashed since then shows here). Unsigned ones (before this existed, or made by a
    # process without the key and not yet signed by a checkpoint) pass on the chain alone.
    tail, forged_tail = (ordered[-1] if ordered else pruned.last), 0
    for row in _rows(catalog):
        seq = row["seq"]
        if seq <= pruned.last:
            report._bad(seq, f"entry {seq}: still in the log, though a pruning checkpoint says it was pruned")
            continue
        changed = entry_hash(row) != row["hash"]
        if seq > tail and row["signature"] is None:
            report.unsigned_tail += 1
        elif seq > tail and not changed:
            report.signatures_checked += 1
            if not entry_signature_valid(verify_key, row["hash"], row["signature"]) and not forged_tail:
                forged_tail = seq  # the first says where; those after it were re-hashed with it
                report._bad(seq, f"entry {seq} changed: its signature does not match (changed after the last "
                                 f"checkpoint{f', which covers entries 1..{tail}' if tail else ''})")
        if seq != expected:
            report._bad(expected, f"entry {expected}: missing (deleted); the log goes on at entry {seq}")
        elif row["prev_hash"] != prev_hash:
            # An entry that is itself changed explains its broken link; otherwise either this entry's link
            # or the entry before it (changed and re-hashed) was touched.
            first = seq if changed else max(seq - 1, matched + 1)
            report._bad(first, f"entry {seq}: does not follow entry {seq - 1} ({_span(first, seq)} was changed, "
                               f"or entries were deleted, inserted or reordered there)", upto=seq)
        if changed:
            report._bad(seq, f"entry {seq}: contents changed (hash does not match)")
        heads = anchors.get(seq)
        if seq in witness:
            # The archive's counter-signature decides: the box's key cannot make a witnessed head.
            w_head, w_at = witness[seq]
            for other, at in (heads or {}).items():
                if other != w_head:
                    report.problems.append(f"the checkpoint signed at {at} over {seq} entries disagrees with the one "
                                           f"witnessed at {w_at} (signed again with the box's key)")
            if row["hash"] == w_head:
                matched = seq
            else:
                report._bad(matched + 1, f"entry {seq}: differs from the checkpoint witnessed at {w_at} (the log was "
                                         f"rewritten; the first changed entry is {_span(matched + 1, seq)})", upto=seq)
        elif heads:
            signed_at = ", ".join(sorted(heads.values()))
            if len(heads) > 1:
                # Two checkpoints signed with this key name different logs of seq entries: the log was
                # rewritten and re-signed (the key sits on the box); which one the log matches now says
                # nothing about which is the original.
                report._bad(matched + 1, f"entries {matched + 1}..{seq}: checkpoints signed at {signed_at} disagree "
                                         f"(the log was rewritten and signed again; the first changed entry is "
                                         f"{_span(matched + 1, seq)})", upto=seq)
            elif row["hash"] in heads:
                matched = seq
            else:
                report._bad(matched + 1, f"entry {seq}: differs from the checkpoint signed at {signed_at} (the log "
                                         f"was rewritten; the first changed entry is {_span(matched + 1, seq)})",
                            upto=seq)
        prev_hash, expected = row["hash"], seq + 1
        report.count += 1
    last = expected - 1
    if 0 in anchors and set(anchors[0]) != {GENESIS}:
        report._bad(1, "checkpoint for an empty log has a head hash")
    if ordered and ordered[-1] > last:
        report._bad(last + 1, f"entries {last + 1}..{ordered[-1]}: missing (the log ends at entry {last}, but "
                              f"the checkpoint signed at {min(anchors[ordered[-1]].values())} covers {ordered[-1]})")
    report.anchored = max((c for c in ordered if c <= last), default=pruned.last)
    _locate(catalog, verify_key, report)
    return report


def verify_on_record(catalog, actor: str, client: str | None = None, *, witnessed: Iterable[dict] = (),
                     problems: Iterable[str] = ()) -> Report:
    """verify() against the catalog's own signing key, and put the check and its outcome on record (the
    web UI's "check the chain": who checked, and what they were shown). `witnessed`, `problems`: what
    appliance.witness found of the archive's statements."""
    report = verify(catalog, VerifyKey(bytes.fromhex(catalog.get_meta("signing_public_key"))), witnessed=witnessed)
    report.problems.extend(problems)
    with catalog.transaction():
        record(catalog, actor=actor, action="verify", client=client,
               details={"what": "audit_chain", "ok": report.ok, "count": report.count, "first_bad": report.where or None})
    return report
