"""Approved handover packages waiting for their download, for one hour, by the person who approved them.

The handover's page offers the package for that hour to its approver (a reload, another page in between,
or logging in again does not lose it); every download is on record (handover_download, one entry per
recording, before the first byte). The passphrase of a passphrase package is shown once at approval and
kept nowhere, so a later download of that package needs the passphrase passed on then.

An encrypted package is kept in a private directory under the data directory (ciphertext only), an
unencrypted one only in memory. The package is built on a worker thread with a catalog connection of its
own, so a server keeps serving meanwhile. The list of waiting downloads lives in memory (one `Downloads`
per running web UI); beside each encrypted package a small record (`TOKEN.json`: approver, handover, file
name, hash, wall-clock time of approval) lets a restarted server offer it again for the rest of its hour.
Packages and records left on disk past the hour are removed.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from . import audit, handover
from .box import Box
from .durable import write_atomic
from .errors import NotFound

DOWNLOAD_TTL_S = 3600          # an approved package waits this long for its download
DOWNLOAD_DIR = "handover-downloads"  # under the data dir: age-encrypted packages only
log = logging.getLogger("kluis.handover")


@dataclass
class Download:
    owner: str              # the user who approved the handover: only they may fetch the package
    handover_id: str
    filename: str
    path: Path | None       # an encrypted package on disk
    data: bytes | None      # an unencrypted package, in memory only
    created: float
    token: str = ""
    expires_at: datetime | None = None  # box time, for the page to say until when it is offered
    package_sha256: str = ""
    package_size: int = 0
    downloads: int = 0


def approve_on_own_connection(box: Box, handover_id: str, actor: str, identity, out, unencrypted: bool,
                              client: str) -> dict:
    """handover.approve on a worker thread, with a catalog connection of its own (SQLite serialises the
    two connections' transactions; one connection shared by two threads would mix them)."""
    with Box(box.data_dir, clock=box.clock) as own:
        own.settings = box.settings  # the settings as the running server has them
        return handover.approve(own, handover_id, actor, identity, out, unencrypted=unencrypted, client=client)


class Downloads:
    def __init__(self, data_dir: Path, ttl_s: float = DOWNLOAD_TTL_S, now: Callable[[], float] = time.monotonic):
        self.folder = Path(data_dir) / DOWNLOAD_DIR
        self.ttl_s = ttl_s
        self._now = now
        self._waiting: dict[str, Download] = {}
        self._loaded = False

    def approve(self, box: Box, h: dict, actor: str, identity, unencrypted: bool,
                client: str) -> tuple[dict, str]:
        """Approve handover `h` and keep its package for `actor`, the approver; returns approve's result
        and the token that fetches the package. Blocking: run it on a worker thread. Nothing is kept if
        approval fails."""
        self.forget_old()
        encrypted = h["protection"] != "none"
        token = secrets.token_urlsafe(24)
        path = None
        out: Path | io.BytesIO
        if encrypted:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            path = self.folder / f"{token}.age"
            out = path
        else:
            out = io.BytesIO()
        try:
            result = approve_on_own_connection(box, h["id"], actor, identity, out, unencrypted, client)
        except BaseException:
            if path:
                path.unlink(missing_ok=True)
            raise
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"{h['id']}.zip.age" if encrypted else f"{h['id']}.zip")
        data = out.getvalue() if isinstance(out, io.BytesIO) else None
        item = Download(actor, h["id"], filename, path, data, self._now(), token=token,
                        expires_at=box.clock() + timedelta(seconds=self.ttl_s),
                        package_sha256=result["package_sha256"], package_size=result["package_size"])
        if path is not None:
            try:
                self._write_record(item)
            except OSError as exc:  # offered by this run only; the approval and the package stand
                log.warning("handover %s: the package's record could not be written (%s); a restart will "
                            "no longer offer it", h["id"], exc.strerror or exc)

        self._waiting[token] = item
        return result, token

    def _write_record(self, item: Download) -> None:
        record = {"owner": item.owner, "handover_id": item.handover_id, "filename": item.filename,
                  "approved_wall": time.time(), "expires_at": item.expires_at.isoformat() if item.expires_at else None,
                  "package_sha256": item.package_sha256, "package_size": item.package_size}
        write_atomic(self.folder / f"{item.token}.json", json.dumps(record), mode=0o600)

    def _load_records(self) -> None:
        """Once per run: the encrypted packages an earlier run of the server still offered."""
        self._loaded = True
        if not self.folder.is_dir():
            return
        for record_path in self.folder.glob("*.json"):
            token = record_path.stem
            try:
                record = json.loads(record_path.read_text())
                age = time.time() - float(record["approved_wall"])
                expires_at = datetime.fromisoformat(record["expires_at"]) if record.get("expires_at") else None
                item = Download(str(record["owner"]), str(record["handover_id"]), str(record["filename"]),
                                self.folder / f"{token}.age", None, self._now() - max(age, 0.0), token=token,
                                expires_at=expires_at, package_sha256=str(record.get("package_sha256") or ""),
                                package_size=int(record.get("package_size") or 0))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable: removed with the leftovers once old
            if age < self.ttl_s and item.path is not None and item.path.exists() and token not in self._waiting:
                self._waiting[token] = item

    def offered(self, handover_id: str, user: str) -> Download | None:
        """The package of this handover still waiting for `user` (its approver), if any: the handover's
        page offers it again on every visit within the hour."""
        self.forget_old()
        for item in self._waiting.values():
            if item.handover_id == handover_id and item.owner == user and self._present(item):
                return item
        return None

    def get(self, token: str, owner: str, handover_id: str) -> Download:
        """The waiting package, for the user who approved it; NotFound otherwise or once it is gone."""
        self.forget_old()
        item = self._waiting.get(token)
        if item is None or item.owner != owner or item.handover_id != handover_id:
            raise NotFound("no such download")
        if not self._present(item):
            raise NotFound("download gone")
        return item

    def fetch(self, box: Box, token: str, user: str, handover_id: str, client: str | None = None) -> Download:
        """get, and the download on record (one handover_download entry per recording of the handover,
        committed before the first byte leaves)."""
        item = self.get(token, user, handover_id)
        h = handover.get(box, handover_id)
        item.downloads += 1
        with box.catalog.transaction():
            for recording_id in h["recording_ids"]:
                audit.record(box.catalog, actor=user, action="handover_download", recording_id=recording_id,
                             purpose=h["purpose"], case_ref=h["case_ref"], client=client, clock=box.clock,
                             details={"handover": handover_id, "name": item.filename,
                                      "package_sha256": item.package_sha256, "size": item.package_size,
                                      "download": item.downloads})
        return item

    @staticmethod
    def _present(item: Download) -> bool:
        return item.data is not None or (item.path is not None and item.path.exists())

    def forget_old(self) -> None:
        """Drop packages not fetched within the hour, and any left by an earlier run of the server."""
        if not self._loaded:
            self._load_records()
        now = self._now()
        for token, item in list(self._waiting.items()):
            if now - item.created > self.ttl_s:
                self._drop(token)
        known = {item.path for item in self._waiting.values() if item.path}
        known |= {self.folder / f"{token}.json" for token in self._waiting}
        if self.folder.is_dir():
            for leftover in self.folder.iterdir():
                try:
                    if leftover not in known and time.time() - leftover.stat().st_mtime > self.ttl_s:
                        leftover.unlink()
                except OSError:
                    pass

    def _drop(self, token: str) -> None:
        item = self._waiting.pop(token, None)
        if item and item.path:
            item.path.unlink(missing_ok=True)
            (self.folder / f"{token}.json").unlink(missing_ok=True)
