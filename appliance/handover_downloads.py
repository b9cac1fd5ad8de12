"""Approved handover packages waiting for their download, for one hour, by the session that approved them.

An encrypted package is kept in a private directory under the data directory (ciphertext only), an
unencrypted one only in memory. The package is built on a worker thread with a catalog connection of its
own, so a server keeps serving meanwhile. The list of waiting downloads lives in memory (one `Downloads`
per running web UI): packages left on disk by an earlier run are removed once they are older than the hour.
"""

from __future__ import annotations

import io
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import handover
from .box import Box
from .errors import NotFound

DOWNLOAD_TTL_S = 3600          # an approved package waits this long for its download
DOWNLOAD_DIR = "handover-downloads"  # under the data dir: age-encrypted packages only


@dataclass
class Download:
    owner: str              # the session that approved the handover: only it may fetch the package
    handover_id: str
    filename: str
    path: Path | None       # an encrypted package on disk
    data: bytes | None      # an unencrypted package, in memory only
    created: float


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

    def approve(self, box: Box, h: dict, actor: str, identity, owner: str, unencrypted: bool,
                client: str) -> tuple[dict, str]:
        """Approve handover `h` and keep its package for `owner`; returns approve's result and the token
        that fetches the package. Blocking: run it on a worker thread. Nothing is kept if approval fails."""
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
        self._waiting[token] = Download(owner, h["id"], filename, path, data,
                                        self._now())
        return result, token

    def get(self, token: str, owner: str, handover_id: str) -> Download:
        """The waiting package, for the session that approved it; NotFound otherwise or once it is gone."""
        self.forget_old()
        item = self._waiting.get(token)
        if item is None or item.owner != owner or item.handover_id != handover_id:
            raise NotFound("no such download")
        if item.data is None and (item.path is None or not item.path.exists()):
            raise NotFound("download gone")
        return item

    def forget_old(self) -> None:
        """Drop packages not fetched within the hour, and any left by an earlier run of the server."""
        now = self._now()
        for token, item in list(self._waiting.items()):
            if now - item.created > self.ttl_s:
                self._drop(token)
        known = {item.path for item in self._waiting.values() if item.path}
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
