"""One account per W800 system controller: its credentials, its tokens, the System ID it is bound to,
and the connection file the keeper uploads into the Axis Body Worn Manager.

The key (BlobAPIKey) is 256 random bits, shown once in the connection file and stored only as its
SHA-256 (no KDF is needed for a secret nobody chose). Tokens are stateless: an HMAC over the account,
its key hash and an expiry, so a new connection file (a new key) ends every token of the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass

from .. import audit
from ..box import Box
from ..dock import devices
from . import spec, transport
from .spec import AxisError

TOKEN_TTL_S = 24 * 3600  # Swift's default token lifetime
APPLICATION = "Kluis"


def _audit(box: Box, action: str, actor: str, details: dict, client: str | None = None) -> None:
    audit.record(box.catalog, actor=actor, action=action, client=client, details=details, clock=box.clock)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def account_name(site: str) -> str:
    """The account (and BlobAPIUserName) for a site: its name in lower-case letters, digits and '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-")[:40] or "w800"
    return name


def get(box: Box, name: str) -> dict | None:
    rows = list(box.catalog.db.query("SELECT * FROM axis_accounts WHERE name = ?", [name]))
    return rows[0] if rows else None


def list_accounts(box: Box) -> list[dict]:
    return list(box.catalog.db.query(
        "SELECT name AS account, site, encrypt, system_id, system_name, bound_at, created_at, created_by, last_contact, "
        "last_address FROM axis_accounts ORDER BY site"))


@dataclass(frozen=True)
class Connection:
    document: dict
    account: str
    created: bool  # False: an existing account got a new key (the old connection file stops working)

    def text(self) -> str:
        return json.dumps(self.document, indent=2) + "\n"


def connection_file(box: Box, site: str, urls: list[str], *, encrypt: bool, actor: str,
                    client: str | None = None, version: str = "") -> Connection:
    """Make (or renew) the account of `site` and return its connection file. The key is in the file
    only; the catalog keeps its hash. Audited as 'axis_connection_file'."""
    site = site.strip()
    if not site or len(site.encode()) > 64:
        raise AxisError(400, "the site name must be 1 to 64 bytes (SiteName in the connection file)")
    if not urls or any(not u.startswith(("https://", "http://")) or len(u) > 512 for u in urls) or len(urls) > 10:
        raise AxisError(400, "give 1 to 10 address(es) of the form https://HOST:PORT/auth/v1.0")
    from .. import tls

    cert_pem = tls.paths(box.data_dir)[0].read_bytes()
    name = account_name(site)
    key = secrets.token_urlsafe(32)
    existing = get(box, name)
    if existing and existing["encrypt"] and not encrypt:
        # The spec: once encryption is on for a system it cannot be turned off.
        raise AxisError(400, f"{site}: the W800 was connected with encryption; a connection file must keep it")
    doc = {
        "ConnectionFileVersion": spec.CONNECTION_FILE_VERSION,
        "SiteName": site,
        "ApplicationName": APPLICATION,
        "ApplicationVersion": version or _version(),
        "ContentDestinationAsNTPServer": False,
        "AuthenticationTokenURI": urls,
        "HTTPSCertificate": [_der_base64(cert_pem)],
        "BlobAPIKey": key,
        "BlobAPIUserName": name,
        "ContainerType": "mp4",
        "FullStoreAndReadSupport": False,
        "WantEncryption": bool(encrypt),
    }
    if encrypt:
        rsa_key = transport.transport_key(box.data_dir, create=True)
        doc["PublicKey"] = base64.b64encode(transport.public_pem(rsa_key)).decode()
        doc["PublicKeyId"] = transport.key_id(rsa_key)
    now = box.now_iso()
    with box.catalog.transaction():
        if existing:
            box.catalog.db.execute("UPDATE axis_accounts SET key_hash = ?, encrypt = ?, site = ? WHERE name = ?",
                                   [_key_hash(key), int(encrypt), site, name])
        else:
            box.catalog.db.table("axis_accounts").insert({
                "name": name, "site": site, "key_hash": _key_hash(key), "encrypt": int(encrypt),
                "created_at": now, "created_by": actor})
        _audit(box, "axis_connection_file", actor, {"account": name, "site": site, "encrypt": bool(encrypt),
                                                    "renewed": bool(existing), "urls": urls}, client)
    return Connection(doc, name, created=not existing)


def default_urls(box: Box) -> list[str]:
    """The addresses a connection file names: `[axis] urls`, else this host's mDNS name and the listen port."""
    import socket

    axis = box.settings.axis
    if axis.urls:
        return list(axis.urls)
    listen = axis.listen
    if not listen:
        raise AxisError(400, "the Axis content destination is off: set [axis] listen (e.g. \"0.0.0.0:8444\") "
                             "in kluis.toml, or give --url")
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = f"{socket.gethostname()}.local"
    return [f"https://{host}:{port}/auth/v1.0"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kluis")
    except PackageNotFoundError:
        return "0"


def _der_base64(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.b64encode(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).decode()


# --- tokens --------------------------------------------------------------------------------------------
def _token_secret(box: Box) -> bytes:
    secret = box.catalog.get_meta("axis_token_secret")
    if secret is None:
        with box.catalog.transaction():
            secret = box.catalog.get_meta("axis_token_secret")
            if secret is None:
                secret = secrets.token_hex(32)
                box.catalog.set_meta("axis_token_secret", secret)
    return bytes.fromhex(secret)


def _mac(box: Box, account: str, key_hash: str, expires: int) -> str:
    msg = f"kluis/v1/axis-token\n{account}\n{key_hash}\n{expires}".encode()
    return hmac.new(_token_secret(box), msg, hashlib.sha256).hexdigest()[:40]


class Throttle:
    """Wrong credentials from one address: after `limit` in `window_s` every further attempt is
    refused without a check, and alerted once, until the window has passed."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clock=time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque] = {}
        self.alerted: set[str] = set()

    def blocked(self, address: str) -> bool:
        failures = self._failures.get(address)
        if not failures:
            return False
        now = self.clock()
        while failures and failures[0] < now - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
            self.alerted.discard(address)
        return len(failures) >= self.limit

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, deque()).append(self.clock())


def authenticate(box: Box, user: str, key: str, address: str, throttle: Throttle) -> tuple[str, str]:
    """Check a W800's credentials; returns (token, account). Wrong ones: AxisError(401), a log line,
    an audit entry and an alert (rate-limited per address)."""
    if throttle.blocked(address):
        if address not in throttle.alerted:
            throttle.alerted.add(address)
            devices.alert(box, "axis_auth_throttled",
                          f"too many wrong Axis credentials from {address}: refused without a check for a while",
                          address=address, action="axis_auth_refused")
        raise AxisError(401, "too many wrong credentials: try again later")
    account = get(box, user) if user else None
    if account is None or not hmac.compare_digest(account["key_hash"], _key_hash(key or "")):
        throttle.failed(address)
        devices.alert(box, "axis_auth_refused",
                      f"wrong Axis credentials for account {str(user)[:64]!r} from {address}",
                      address=address, action="axis_auth_refused")
        raise AxisError(401, "wrong credentials")
    expires = int(box.clock().timestamp()) + TOKEN_TTL_S
    token = f"kluis_{account['name']}_{expires}_{_mac(box, account['name'], account['key_hash'], expires)}"
    touch(box, account["name"], address)
    return token, account["name"]


def check_token(box: Box, token: str | None, account: str) -> dict:
    """The account row a token is good for; AxisError(401) for a missing, forged or expired one, or a
    token of another account."""
    match = re.fullmatch(r"kluis_([a-z0-9-]{1,48})_(\d{1,12})_([0-9a-f]{40})", token or "")
    if not match or match.group(1) != account:
        raise AxisError(401, "no valid token for this account")
    row = get(box, account)
    expires = int(match.group(2))
    if row is None or not hmac.compare_digest(match.group(3), _mac(box, account, row["key_hash"], expires)):
        raise AxisError(401, "no valid token for this account")
    if expires < box.clock().timestamp():
        raise AxisError(401, "token expired")
    return row


def touch(box: Box, account: str, address: str | None) -> None:
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE axis_accounts SET last_contact = ?, last_address = ? WHERE name = ?",
                               [box.now_iso(), address, account])


# --- the System ID ------------------------------------------------------------------------------------
def bind_system(box: Box, account: dict, system_id: str, meta: dict, address: str | None) -> bool:
    """Bind the account to the W800's System ID at first contact; returns True when it was bound now.
    Another System ID later is refused (403) and alerted: another controller holds these credentials."""
    bound = account["system_id"]
    if bound and bound != system_id:
        devices.alert(box, "axis_system_id_refused",
                      f"account {account['name']} ({account['site']}) is bound to system {bound}; "
                      f"system {system_id} from {address} was refused", address=address,
                      action="axis_system_refused")
        raise AxisError(403, "this content destination is bound to another body worn system")
    with box.catalog.transaction():
        box.catalog.db.execute(
            "UPDATE axis_accounts SET system_id = ?, system_name = ?, connection_id = COALESCE(connection_id, ?), "
            "bound_at = COALESCE(bound_at, ?) WHERE name = ?",
            [system_id, meta.get("systemname") or account["system_name"], meta.get("connectionid"),
             box.now_iso(), account["name"]])
        if not bound:
            _audit(box, "axis_first_contact", "system",
                   {"account": account["name"], "site": account["site"], "system_id": system_id,
                    "system_name": meta.get("systemname"), "address": address})
    return not bound


def system_object(account: dict, system_id: str) -> dict:
    if account["system_id"] != system_id:
        raise AxisError(404, "no such system")
    return {"Connectionid": account["connection_id"] or "", "Systemname": account["system_name"] or ""}

