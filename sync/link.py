"""The box's HTTPS link to the archive: each request on a blocking TLS socket of its own, driven from a
worker thread, and pinned to the archive's certificate (the SHA-256 fingerprint from the enrollment
token, checked before a byte of the request is sent; no CA is consulted). Transport only: what is sent
and signed is sync/client.py's business.

Why not aiohttp's client (the box still uses it for cameras):
- asyncio's TLS layer copies every byte twice more, through a memory BIO and Python buffers; at loopback
  speed that doubled the sender's CPU per GB (bench/bench_sync.py). Here OpenSSL writes straight to the
  socket with the GIL released.
- importing it loads the system's CA store twice, ~0.1 s of every `kluis sync run` with its modules,
  for a link that trusts one fingerprint.
- one transport for every request keeps the pinning in one place.

A request awaited on the event loop runs in a worker thread. When the awaiting task is cancelled, the
socket is shut down so that the thread ends at once, and the call waits for it: a pass stops promptly,
and `kluis serve` with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Callable, Iterable, TypeVar

from appliance.errors import KluisError

CONNECT_TIMEOUT_S = 10.0
_TCP_ESTABLISHED = 1  # tcpi_state of Linux's TCP_INFO
T = TypeVar("T")


class SyncError(KluisError):
    """Something the archive or the network did that a pass cannot get past now."""


class Refused(SyncError):
    """The archive refused a request (4xx): retrying the same request will not help."""

    def __init__(self, status: int, message: str):
        super().__init__(f"archive refused ({status}): {message}")
        self.status = status


class Unreachable(SyncError):
    """Connection refused or cut, timeout, 5xx: worth retrying later."""


def answer(status: int, text: str, reason: str | None = None) -> dict:
    """The archive's JSON answer, or the error it stands for."""
    try:
        payload = json.loads(text) if text else {}
    except ValueError:
        payload = {"error": text[:200]}
    if status >= 500:
        raise Unreachable(f"archive error {status}: {payload.get('error', '')}")
    if status >= 400:
        raise Refused(status, payload.get("error", reason or ""))
    return payload


class Link:
    """HTTPS to one archive (`base`: https://host:port[/prefix]) whose certificate hashes to
    `cert_sha256`. Read timeout `timeout_s` for every socket operation after connecting."""

    def __init__(self, base: str, cert_sha256: str, timeout_s: float = 60):
        url = urllib.parse.urlsplit(base)
        if not url.hostname:
            raise ValueError(f"no host in the archive's address {base!r}")
        self.host, self.port, self.prefix = url.hostname, url.port or 443, url.path.rstrip("/")
        self.cert_sha256 = cert_sha256.lower()
        self.timeout_s = timeout_s
        # Not create_default_context(): it loads the system's CA store (~20 ms), which a pinned
        # fingerprint has no use for.
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the pinned fingerprint is the trust, not a CA

    async def run(self, work: Callable[["Exchange"], T]) -> T:
        """`work(exchange)` in a thread of its own (not the event loop's default pool: a stream and its
        progress feed hold theirs for as long as an upload takes, on a slow uplink hours); network
        failures become Unreachable."""
        exchange = Exchange(self, asyncio.get_running_loop())
        done: concurrent.futures.Future = concurrent.futures.Future()

        def thread() -> None:
            try:
                done.set_result(exchange.guarded(work))
            except BaseException as exc:  # handed to the awaiting task
                done.set_exception(exc)

        threading.Thread(target=thread, name="kluis-link", daemon=True).start()
        running = asyncio.wrap_future(done)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            exchange.abort()  # unblocks the thread's send or read; wait for it (it may hold a file)
            await asyncio.gather(running, return_exceptions=True)
            raise

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> dict:
        """One request with a (JSON) body and its JSON answer."""
        return await self.stream(method, path, headers, len(body), lambda exchange: [body])

    async def stream(self, method: str, path: str, headers: dict, length: int,
                     pieces: Callable[[Exchange], Iterable]) -> dict:
        """A request whose body of `length` bytes the worker thread sends as `pieces(exchange)` yields
        them (between pieces it may wait on the event loop: Exchange.on_loop); its JSON answer. An
        archive that refuses the body before its end and closes still gets its reason through."""

        def work(exchange: Exchange) -> dict:
            try:
                exchange.send(method, path, headers, pieces(exchange), length)
            except (OSError, http.client.HTTPException):
                early = None if exchange.stopped.is_set() else exchange.early_answer()
                if early is None:
                    raise
                return answer(*early)
            return answer(*exchange.response_text())

        return await self.run(work)

    async def follow(self, path: str, headers: dict, heard: Callable[[dict], Any]) -> None:
        """A GET answered with JSON lines as they come (the archive's progress feed): `heard(line)` is
        called on the event loop for each. Returns when the answer ends."""

        def work(exchange: Exchange) -> None:
            exchange.send("GET", path, headers, [], 0)
            response = exchange.response()
            if response.status != 200:
                answer(response.status, response.read().decode("utf-8", "replace"), response.reason)
                return
            for line in response:
                if line.strip():
                    exchange.loop.call_soon_threadsafe(heard, answer(200, line.decode("utf-8", "replace")))

        await self.run(work)


class Exchange:
    """One request and its answer on a connection of its own, for one worker thread. abort(), from any
    thread, makes a blocked send or read fail at once."""

    def __init__(self, link: Link, loop: asyncio.AbstractEventLoop):
        self.link, self.loop = link, loop
        self.stopped = threading.Event()
        self.conn: http.client.HTTPSConnection | None = None

    def guarded(self, work: Callable[["Exchange"], T]) -> T:
        try:
            return work(self)
        except (OSError, http.client.HTTPException) as exc:
            if self.stopped.is_set():
                raise Unreachable("the pass was stopped") from None
            raise Unreachable(f"archive unreachable: {exc.__class__.__name__}: {exc}") from None
        finally:
            if self.conn is not None:
                self.conn.close()

    def send(self, method: str, path: str, headers: dict, pieces: Iterable, length: int) -> None:
        """Connect, check the pinned fingerprint, send the request with a body of `length` bytes that
        `pieces` yields (read as they are sent)."""
        link = self.link
        conn = self.conn = http.client.HTTPSConnection(link.host, link.port, timeout=CONNECT_TIMEOUT_S,
                                                       context=link.context)
        if self.stopped.is_set():
            raise ConnectionAbortedError("the pass was stopped")
        conn.connect()
        conn.sock.settimeout(link.timeout_s)
        der = conn.sock.getpeercert(binary_form=True) or b""
        if hashlib.sha256(der).hexdigest() != link.cert_sha256:
            raise Refused(495, "the archive's certificate does not match the pinned fingerprint")
        conn.putrequest(method, link.prefix + path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if length or method in ("POST", "PUT"):
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        for piece in pieces:
            if self.stopped.is_set():
                raise ConnectionAbortedError("the pass was stopped")
            if piece:
                conn.sock.sendall(piece)

    def _connected(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            raise ConnectionError("no request was sent")
        return self.conn

    def response(self) -> http.client.HTTPResponse:
        return self._connected().getresponse()

    def response_text(self) -> tuple[int, str, str]:
        response = self.response()
        return response.status, response.read().decode("utf-8", "replace"), response.reason

    def early_answer(self) -> tuple[int, str, str] | None:
        """After a failed send: the answer, if the archive refused the body early and closed."""
        try:
            self._connected().sock.settimeout(1.0)
            return self.response_text()
        except (OSError, http.client.HTTPException, AttributeError):
            return None

    def on_loop(self, coro) -> Any:
        """Run `coro` on the event loop and wait for it (from the worker thread). While it waits, a
        connection the archive closed or reset (it answered early, or the link was cut) ends the wait:
        the stream would otherwise wait for a window that the archive, no longer reading, never opens."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        while True:
            try:
                return future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                if self.stopped.is_set():
                    future.cancel()
                    raise ConnectionAbortedError("the pass was stopped") from None
                if self._ended():
                    future.cancel()
                    raise ConnectionResetError("the archive ended the request before its body") from None

    def _ended(self) -> bool:
        """Whether the archive closed or reset the connection, from the kernel's TCP state. Not whether
        the socket is readable: TLS 1.3 servers send session tickets after the handshake, which sit
        unread until the answer is read, so a stalled but healthy stream would look ended."""
        sock = self.conn.sock if self.conn is not None else None
        if sock is None or not hasattr(socket, "TCP_INFO"):
            return False
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        except OSError:
            return True
        return state != _TCP_ESTABLISHED

    def abort(self) -> None:
        self.stopped.set()
        sock = self.conn.sock if self.conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
