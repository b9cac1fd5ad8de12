"""One recording's container streamed to the archive from the offset the archive has (sync/protocol.py):
read from the vault in blocks, cut into pieces handed to the network by the link's worker thread, held
to the window (at most a chunk beyond what the archive wrote, followed on a second connection) and to
the bandwidth limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from appliance.errors import KluisError

from .enrollment import signed_headers, signing_key_of
from .link import Exchange, Refused, SyncError
from .protocol import API, sign_request

PIECE = 64 * 1024  # pacing granularity of the bandwidth limit
BLOCK = 1024 * 1024  # one read


class Pacer:
    """Holds the upload to `rate` bytes per second on average (0: no limit)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.start = 0.0
        self.sent = 0

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        if now > self.start + self.sent / self.rate + 1.0:  # idle for a while: no burst credit
            self.start, self.sent = now, 0
        self.sent += n
        due = self.start + self.sent / self.rate
        if due > now:
            await asyncio.sleep(due - now)


class ContainerStream:
    """The rest of one queued recording's container, from `offset`, in one signed PUT. `syncer` is the
    pass it belongs to (sync/client.py): its link, window, pacer and outbox row."""

    def __init__(self, syncer, row: dict, header: bytes, stored_path: str, offset: int):
        self.syncer, self.row, self.header, self.stored_path, self.offset = syncer, row, header, stored_path, offset

    async def send(self) -> None:
        """The rest of the container from `offset` in one streamed request (sync/protocol.py), sent by a
        worker thread (sync/link.py): the event loop (web UI, offload) never waits on the disk or the
        network. From offset 0 the signed hash of the range is the container's own, known from the
        catalog; a resumed range is hashed first (one read of what is left)."""
        syncer, row, header, offset = self.syncer, self.row, self.header, self.offset
        rid, size, sha = row["recording_id"], row["size"], row["sha256"]
        with syncer.box.vault.open_payload(self.stored_path) as payload:
            claimed = sha if offset == 0 else await asyncio.to_thread(hash_range, header, payload, offset, size)
            path = f"{API}/uploads/{sha}/stream?offset={offset}"
            headers = sign_request(signing_key_of(syncer.box), syncer.box_id, "PUT", path, claimed, syncer.box.clock())
            headers["Content-Type"] = "application/octet-stream"
            acks = Acks(syncer, f"{API}/uploads/{sha}", offset, syncer.chunk_size)
            progress = asyncio.ensure_future(self._progress(rid, acks))
            try:
                answered = await syncer.link.stream(
                    "PUT", path, headers, size - offset,
                    lambda exchange: self._pieces(exchange, acks, header, payload, offset, size))
            finally:
                progress.cancel()
                await acks.close()
        if int(answered["offset"]) != size:  # the archive holds another offset: ask again
            raise Refused(409, f"archive is at offset {answered['offset']}, not {size}")
        syncer.update_outbox(rid, sent_bytes=size)

    async def _progress(self, rid: str, acks: "Acks") -> None:
        """What the archive has, for the UI, about once a second while a stream runs."""
        while True:
            await asyncio.sleep(1.0)
            self.syncer.update_outbox(rid, sent_bytes=acks.acked)

    def _pieces(self, exchange: Exchange, acks: "Acks", header: bytes, payload, offset: int, size: int):
        """The body, in the sending thread: blocks of the container cut into pieces. Before a piece the
        event loop is asked to keep the window (at most a chunk beyond what the archive wrote) and the
        bandwidth limit, when either may hold it back."""
        syncer = self.syncer
        step = PIECE if syncer.pacer.rate else syncer.piece
        while offset < size:
            block = memoryview(read_container(header, payload, offset, min(BLOCK, size - offset)))
            for pos in range(0, len(block), step):
                piece = block[pos:pos + step]
                end = offset + pos + len(piece)
                if syncer.pacer.rate or acks.must_allow(end):
                    exchange.on_loop(self._admit(acks, end, len(piece)))
                syncer.result.bytes_sent += len(piece)
                yield piece
            offset += len(block)

    async def _admit(self, acks: "Acks", end: int, n: int) -> None:
        await acks.allow(end)
        await self.syncer.pacer.take(n)


class Acks:
    """How much of a stream the archive has written, followed on a second connection while the stream
    runs (GET uploads/{sha256}/progress: a line per MiB written, and when writing pauses). The box keeps
    at most `window` bytes beyond that in flight: what a cut link loses (in socket buffers on the way,
    which the kernel lets grow to many MiB) stays under one chunk, as with parts."""

    def __init__(self, syncer, path: str, acked: int, window: int):
        self.syncer, self.path, self.acked, self.window = syncer, path, acked, window
        self.following: asyncio.Task | None = None
        self.error: SyncError | None = None
        self._moved = asyncio.Event()

    def _heard(self, answer: dict) -> None:
        self.acked = max(self.acked, int(answer["offset"]))
        self._wake(None)

    def _wake(self, error: SyncError | None) -> None:
        self.error = error
        self._moved.set()
        self._moved = asyncio.Event()

    async def _follow(self) -> None:
        """Follow the feed; it ends with its stream (or answers once when the archive has not opened the
        stream yet): follow it again, soon at first, then less often."""
        syncer, pause = self.syncer, 0.005
        while True:
            path = self.path + "/progress"
            try:
                await syncer.link.follow(path, signed_headers(syncer.box, syncer.box_id, "GET", path, b""),
                                         self._heard)
            except SyncError as exc:  # the stream itself will tell; raised below if we must wait on it
                self._wake(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def must_allow(self, end: int) -> bool:
        """Whether bytes up to `end` need allow() first (asked by the sending thread, to spare a hop
        to the event loop per piece): the window is full, or it is time to start following."""
        return end - self.acked > (self.window if self.following is not None else self.window // 2)

    async def allow(self, end: int) -> None:
        """Wait until handing over bytes up to `end` keeps the window; start following the archive's
        progress from half of it."""
        if end - self.acked > self.window // 2 and self.following is None:
            self.following = asyncio.ensure_future(self._follow())
        while end - self.acked > self.window:
            if self.error is not None:
                raise self.error
            await self._moved.wait()

    async def close(self) -> None:
        if self.following is not None:
            self.following.cancel()
            await asyncio.gather(self.following, return_exceptions=True)


def hash_range(header: bytes, payload, offset: int, size: int) -> str:
    """SHA-256 of container bytes [offset, size): the signed hash of a resumed stream."""
    digest = hashlib.sha256()
    while offset < size:
        block = read_container(header, payload, offset, min(BLOCK, size - offset))
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def read_container(header: bytes, payload, offset: int, n: int) -> bytes:
    """Bytes [offset, offset+n) of the container header + payload, without building it whole. Past the
    header this is one read and no copy (here buffers of several MiB cost page faults on every use)."""
    head = header[offset:offset + n] if offset < len(header) else b""
    payload.seek(max(offset - len(header), 0))
    out = payload.read(n - len(head))
    if head:
        out = head + out
    if len(out) != n:
        raise KluisError("the stored recording is shorter than its catalog says (run kluis verify)")
    return out
