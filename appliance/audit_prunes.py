"""Pruning checkpoints: what pruning the audit log removed, signed by the box, so that the chain is
checked on from the last pruned entry (the act of pruning, and what is never pruned: appliance/audit_term.py).

A pruning checkpoint (kind kluis/v1/audit-prune; docs/format.md, "Pruning the audit log") is

    {type: "kluis-audit-prune", v: 1, signer, first, last, count, actions, prev_hash, last_hash,
     first_time, last_time, cutoff, term_days, time}

`first`..`last` are the sequence numbers pruned (`count` of them, `actions` {action: how many}),
`prev_hash` is the `prev_hash` of entry `first` (64 zeros for entry 1, else the `last_hash` of the
checkpoint before), `last_hash` the hash of entry `last`: the entry `last` + 1 that stays names it as its
`prev_hash`, so the chain from there on is checked as before. The checkpoints of a log follow each other
without gap from entry 1. Stored in `audit_prunes` (appliance/schema/audit.py, step "prunes").

No import of appliance.audit here: audit.verify reads these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from nacl.signing import SigningKey, VerifyKey

from . import signing
from .canonical import canonical

PRUNE_TYPE = "kluis-audit-prune"
GENESIS = "0" * 64
FIELDS = ("type", "v", "signer", "first", "last", "count", "actions", "prev_hash", "last_hash", "first_time",
          "last_time", "cutoff", "term_days", "time")


def body(*, signer: str, first: int, last: int, actions: dict[str, int], prev_hash: str, last_hash: str,
         first_time: str, last_time: str, cutoff: str, term_days: int, time: str) -> dict:
    return {"type": PRUNE_TYPE, "v": 1, "signer": signer, "first": first, "last": last,
            "count": sum(actions.values()), "actions": dict(sorted(actions.items())), "prev_hash": prev_hash,
            "last_hash": last_hash, "first_time": first_time, "last_time": last_time, "cutoff": cutoff,
            "term_days": term_days, "time": time}


def sign(signing_key: SigningKey, item: dict) -> dict:
    return {**item, "signature": signing.sign(signing_key, signing.AUDIT_PRUNE, item)}


def store(catalog, signed: dict) -> None:
    """Keep a signed checkpoint (inside the caller's transaction, before the entries it covers go)."""
    payload = {name: signed[name] for name in FIELDS}
    catalog.db.execute("INSERT INTO audit_prunes (first, last, body, signature) VALUES (?, ?, ?, ?)",
                       [payload["first"], payload["last"], canonical(payload).decode("utf-8"), signed["signature"]])


def stored(catalog) -> list[dict]:
    """Every stored pruning checkpoint as signed (with `signature`), in the order they were made; a row
    whose body is not JSON comes back as {first, last, signature, broken: True}."""
    found = []
    for row in catalog.db.query("SELECT first, last, body, signature FROM audit_prunes ORDER BY id"):
        try:
            item = json.loads(row["body"])
            if not isinstance(item, dict):
                raise ValueError
            found.append({**item, "signature": row["signature"], "_first": row["first"], "_last": row["last"]})
        except ValueError:
            found.append({"first": row["first"], "last": row["last"], "signature": row["signature"], "broken": True})
    return found


def last_hash_at(catalog, seq: int) -> str | None:
    """The hash of entry `seq` as the pruning checkpoint ending there recorded it (None: none ends there)."""
    row = catalog.db.execute("SELECT json_extract(body, '$.last_hash') FROM audit_prunes WHERE last = ? "
                             "ORDER BY id DESC LIMIT 1", [seq]).fetchone()
    return row[0] if row else None


def check(item: dict, verify_key: VerifyKey) -> str | None:
    """None if `item` is a well-formed pruning checkpoint signed by `verify_key`; else what is wrong."""
    if item.get("broken"):
        return "not readable"
    try:
        payload = {name: item[name] for name in FIELDS}
        first, last, count = int(payload["first"]), int(payload["last"]), int(payload["count"])
        actions = {str(k): int(v) for k, v in dict(payload["actions"]).items()}
    except (KeyError, TypeError, ValueError):
        return "malformed"
    if payload["type"] != PRUNE_TYPE or payload["signer"] != bytes(verify_key).hex():
        return "signed by another key than this box's" if payload["type"] == PRUNE_TYPE else "malformed"
    if not signing.is_valid(verify_key, signing.AUDIT_PRUNE, payload, str(item.get("signature"))):
        return "signature does not match"
    if first < 1 or last < first or count != last - first + 1 or sum(actions.values()) != count:
        return "its range and counts disagree"
    if ("_first" in item and item["_first"] != first) or ("_last" in item and item["_last"] != last):
        return "its stored range is not the signed one"
    return None


@dataclass
class Pruned:
    """What the valid pruning checkpoints of a log say: entries 1..`last` went, entry `last` had hash
    `last_hash`; `boundaries` {last: last_hash} of each checkpoint (heads a signed or witnessed checkpoint
    over exactly that many entries must match); `problems` with the rest."""
    last: int = 0
    last_hash: str = GENESIS
    checkpoints: list[dict] = field(default_factory=list)
    boundaries: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.last

    def actions(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for cp in self.checkpoints:
            for action, n in cp["actions"].items():
                total[action] = total.get(action, 0) + int(n)
        return dict(sorted(total.items()))


def read(catalog, verify_key: VerifyKey) -> Pruned:
    """The stored pruning checkpoints, each checked, in a chain from entry 1. The chain stops at the
    first that is altered or does not follow on: the entries it claims to cover then count as missing."""
    pruned = Pruned()
    for item in stored(catalog):
        where = f"pruning checkpoint of entries {item.get('first')}..{item.get('last')}"
        wrong = check(item, verify_key)
        if wrong is None and (int(item["first"]) != pruned.last + 1 or item["prev_hash"] != pruned.last_hash):
            wrong = (f"does not follow on from entry {pruned.last}" if pruned.last else
                     "does not start at entry 1")
        if wrong is not None:
            pruned.problems.append(f"{where} ({item.get('time')}): {wrong}")
            break  # those after it cannot be placed either
        pruned.checkpoints.append(item)
        pruned.last, pruned.last_hash = int(item["last"]), str(item["last_hash"])
        pruned.boundaries[pruned.last] = pruned.last_hash
    return pruned
