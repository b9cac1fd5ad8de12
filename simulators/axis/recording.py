"""One recording's upload by the W800 simulator: its names, times and metadata and the order of its requests
(container, metadata, key objects, clips, GNSS track, bookmarks, Complete). The requests themselves go
through the W800Simulator (simulators/axis/w800.py) that makes the recording."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message

from .clips import ClipSource, ContentKey, encrypted_size
from .protocol import (AxisSimError, bookmark_name, clip_key_name, clip_name, encode_metadata, epoch,
                       gnss_key_name, gnss_name, gnss_track, iso, location, LOCATION_ACCURACY_M, md5_hex, Raw,
                       utc, where)

log = logging.getLogger("kluis.axis-sim")


@dataclass
class _Body:
    """A request body that can be sent again from the start (a retry), with its size known beforehand."""

    size: int
    chunks: Callable[[], Iterator[bytes]]
    content_type: str
    md5: str | None = None  # known before sending: then it goes out as the ETag header
    small: bytes | None = None  # the whole body, when it is a few bytes of JSON or text

    @classmethod
    def of(cls, data: bytes, content_type: str) -> _Body:
        return cls(len(data), lambda: iter([data]), content_type, md5_hex(data), data)


@dataclass
class _Reply:
    status: int
    headers: Mapping[str, str] | Message  # aiohttp's, or http.client's (a Message)
    data: bytes


@dataclass
class Bookmark:
    """A bookmark or category bookmark on a recording (stored only with the StoreBookmarks capability)."""

    text: str = ""  # the free text, the object's body
    category_id: str | None = None
    category_name: str | None = None
    tags: str | None = None  # "key:value;key:value"; default "TriggerOn:<the recording's trigger>"
    start: datetime | None = None  # default: the recording's start
    end: datetime | None = None  # default: none (then no EndTime key)


@dataclass
class RecordingResult:
    """What became of one recording."""

    container: str
    clips: list[str] = field(default_factory=list)  # clip objects stored, in order
    objects: list[str] = field(default_factory=list)  # every object stored (clips, keys, track, bookmarks)
    statuses: list[tuple[str, str, int]] = field(default_factory=list)  # (method, name, final status)
    retries: int = 0
    error: str | None = None
    status: int | None = None  # the HTTP status that stopped the recording (None: none, or no answer)

    @property
    def ok(self) -> bool:
        return self.error is None


# --- the W800 ----------------------------------------------------------------------------------------------

def _close(chunks: Iterator[bytes]) -> None:
    """Close a generator early (its file with it); a plain iterator has nothing to close."""
    if (close := getattr(chunks, "close", None)) is not None:
        close()


def _hash_body(body: _Body) -> str:
    """The MD5 of a body as it will be sent (encrypted, if so), and a check that it has the size it claims."""
    md5, size = hashlib.md5(), 0
    chunks = body.chunks()
    try:
        for chunk in chunks:
            md5.update(chunk)
            size += len(chunk)
    finally:
        _close(chunks)
    if size != body.size:
        raise AxisSimError(f"a clip has {size} bytes, not the {body.size} it claimed")
    return md5.hexdigest()


class _Recording:
    """The upload of one recording: names, times and metadata, and the order of the requests."""

    def __init__(self, w800, result: RecordingResult, serial: str, user_uuid: str, model: str,
                 firmware: str, on: datetime, off: datetime, start: datetime, stop: datetime,
                 trigger_on_reason: str, trigger_off_reason: str):
        self.w = w800
        self.result = result
        self.serial = serial
        self.user_uuid = user_uuid
        self.model = model
        self.firmware = firmware
        self.on, self.off, self.start, self.stop = on, off, start, stop
        self.trigger_on_reason, self.trigger_off_reason = trigger_on_reason, trigger_off_reason
        self.recording_id = secrets.token_hex(2)  # the spec's "short, random number", the same for all clips

    @property
    def container(self) -> str:
        return self.result.container

    def place(self, moment: datetime) -> str:
        span = (self.stop - self.start).total_seconds() or 1
        lat, lon = where((moment - self.start).total_seconds() / span)
        return location(lat, lon, LOCATION_ACCURACY_M, moment)

    def metadata(self, status: str) -> dict[str, str]:
        meta = {
            "ContainerName": self.container, "BWCSerialNumber": self.serial, "SCUSerialNumber": self.w.scu_serial,
            "FirmwareVersion": self.firmware, "UserID": self.user_uuid,
            "TriggerOn": self.trigger_on_reason, "TriggerOff": self.trigger_off_reason,
            "TriggerOnTime": epoch(self.on), "TriggerOnTimeISO": iso(self.on),
            "TriggerOnLocation": self.place(self.on),
            "TriggerOffTime": epoch(self.off), "TriggerOffTimeISO": iso(self.off),
            "TriggerOffLocation": self.place(self.off),
            "StartTime": epoch(self.start), "StartTimeISO": iso(self.start),
            "StopTime": epoch(self.stop), "StopTimeISO": iso(self.stop),
            "TimeZone": self.w.time_zone, "BWCModel": self.model, "Status": status,
        }
        if self.w.malformed_metadata:
            meta["TriggerOnTime"] = "not-a-number"
            meta["TriggerOnLocation"] = Raw("%zz")  # not valid percent-encoding
        return meta

    async def post_metadata(self, status: str) -> None:
        await self.w._request("POST", self.container, headers=encode_metadata("Container", self.metadata(status)),
                              ok=(204,), tally=self.result)

    async def upload(self, sources: list[ClipSource], lengths: list[int], bookmarks: list[Bookmark],
                     gnss: bool) -> None:
        w = self.w
        await w._request("PUT", self.container, body=_Body.of(b"", "application/octet-stream"),
                         ok=(201, 202), tally=self.result)
        await self.post_metadata("Transferring")
        if w.complete_before_clips:
            await self.post_metadata("Complete")
        begin = self.start
        for source, seconds in zip(sources, lengths):
            end = begin + timedelta(seconds=seconds)
            await self.put_clip(source, begin, end)
            begin = end
        if gnss and w.capable("StoreGNSSTrackRecording"):
            await self.put_gnss()
        elif gnss:
            log.info("%s: no StoreGNSSTrackRecording capability, no GNSS track", self.container)
        if bookmarks and w.capable("StoreBookmarks"):
            for number, bookmark in enumerate(bookmarks, 1):
                await self.put_bookmark(bookmark, str(number))
        elif bookmarks:
            log.info("%s: no StoreBookmarks capability, bookmarks left out", self.container)
        await self.post_metadata("Complete")

    def _encrypted(self, size: int, chunks: Callable[[], Iterator[bytes]], content_type: str,
                   key: ContentKey | None) -> _Body:
        if key is None:
            return _Body(size, chunks, content_type)
        return _Body(encrypted_size(size), lambda: key.encrypt(chunks()), "application/octet-stream")

    async def _put_with_key(self, name: str, key_name: str, key_start: datetime, meta: dict, body: _Body,
                            key: ContentKey | None, *, clip: bool = False) -> None:
        """An object and, with encryption, its key object: before it, or after it (key_after_clip)."""
        w = self.w

        async def put_key(key: ContentKey) -> None:
            data = key.key_object(w.public_key, w.conn["PublicKeyId"])
            await w._put_object(self.container, key_name, {"StartTime": epoch(key_start), "FileType": "key"},
                                _Body.of(data, "application/json"), self.result)

        if key is not None and not w.key_after_clip:
            await put_key(key)
        await w._put_object(self.container, name, meta, body, self.result, clip=clip)
        if key is not None and w.key_after_clip:
            await put_key(key)

    async def put_clip(self, source: ClipSource, begin: datetime, end: datetime) -> None:
        w = self.w
        name = clip_name(begin, self.recording_id, w.container_type)
        key = ContentKey.new() if w.public_key is not None else None
        meta = {"StartTime": epoch(begin), "StartTimeISO": iso(begin), "StopTime": epoch(end),
                "StopTimeISO": iso(end), "ContainerType": w.container_type,
                "StartLocation": self.place(begin), "StopLocation": self.place(end)}
        content_type = "video/mp4" if w.container_type == "mp4" else "video/x-matroska"
        body = self._encrypted(source.size, source.open, content_type, key)
        await self._put_with_key(name, clip_key_name(name), begin, meta, body, key, clip=True)
        self.result.clips.append(name)

    async def put_gnss(self) -> None:
        w = self.w
        name = gnss_name(self.start, self.recording_id, self.serial)
        data = json.dumps(gnss_track(self.start, self.stop), indent=2).encode()
        key = ContentKey.new() if w.public_key is not None else None
        body = self._encrypted(len(data), lambda: iter([data]), "application/json", key)
        await self._put_with_key(name, gnss_key_name(name), self.start, {"FileType": "json"}, body, key)

    async def put_bookmark(self, bookmark: Bookmark, number: str) -> None:
        start = utc(bookmark.start) if bookmark.start else self.start
        meta = {}
        if bookmark.category_id is not None:
            meta["CategoryID"] = bookmark.category_id
        if bookmark.category_name is not None:
            meta["CategoryName"] = bookmark.category_name
        meta["Tags"] = bookmark.tags if bookmark.tags is not None else f"TriggerOn:{self.trigger_on_reason}"
        meta["StartTime"] = iso(start)
        if bookmark.end is not None:
            meta["EndTime"] = iso(bookmark.end)
        await self.w._put_object(self.container, bookmark_name(start, number), meta,
                                 _Body.of(bookmark.text.encode("utf-8"), "text/plain; charset=utf-8"), self.result)
