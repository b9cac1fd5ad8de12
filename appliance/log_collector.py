"""The audit log, alerts and signed checkpoints to the municipality's log collector: syslog, RFC 5424
messages over TCP with TLS and octet-counting framing (RFC 5425), as the Baseline Informatiebeveiliging
Overheid asks of logging (a copy outside the system that made it).

Every audit entry is sent once, in order, with its fields as structured data; so are each signed
checkpoint and each alert episode's opening and closing. What has been sent is kept as cursors in the
catalog (meta keys below): the next run resends from there, after a restart or while the collector was
away, so nothing is skipped. A batch counts as delivered only when the collector has read all of it: the
box closes its side of the TLS stream after the batch and waits for the collector to close its side, which
a server does only after reading everything before the close. Only a connection cut during that wait can
make the next run send a batch again; each message carries the entry's sequence number and hash, so a
collector can recognise a repeat.

Structured-data IDs carry the number 32473 (RFC 5612, reserved for documentation): Kluis has no IANA
Private Enterprise Number of its own; the collector matches on the names.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from dataclasses import dataclass, field

from . import audit
from .box import Box
from .canonical import canonical
from .config_models import SyslogSettings
from .errors import KluisError

log = logging.getLogger("kluis.syslog")

PEN = 32473
SD_AUDIT, SD_CHECKPOINT, SD_ALERT = f"audit@{PEN}", f"checkpoint@{PEN}", f"alert@{PEN}"
APP_NAME = "kluis"
CURSOR_AUDIT = "syslog_audit_seq"          # the last audit entry the collector has
CURSOR_CHECKPOINT = "syslog_checkpoint_id"  # the last audit_checkpoints.id it has
BATCH = 2000  # entries per connection: one delivery confirmation per batch
TIMEOUT_S = 30
SETTLE_S = 0.5  # a collector that refuses the box closes within this after the handshake (_accepted)

# facility * 8 + severity (RFC 5424 6.2.1): 13 = log audit, 1 = user-level; 4 = warning, 5 = notice
PRI_AUDIT = 13 * 8 + 5
PRI_ALERT_OPEN = 1 * 8 + 4
PRI_ALERT_CLOSE = 1 * 8 + 5


class CollectorError(KluisError):
    """The log collector could not be reached, or did not confirm what was sent."""


def _sd_value(value) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured(sd_id: str, params: dict) -> str:
    """One SD-ELEMENT; parameters whose value is None are left out."""
    inner = "".join(f' {name}="{_sd_value(value)}"' for name, value in params.items() if value is not None)
    return f"[{sd_id}{inner}]"


def format_message(pri: int, timestamp: str, hostname: str, msgid: str, sd: str, msg: str) -> bytes:
    """An RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG (MSG as UTF-8 with a BOM)."""
    head = f"<{pri}>1 {timestamp} {hostname or '-'} {APP_NAME} - {msgid} ".encode("ascii", "replace")
    # PARAM-VALUEs are UTF-8 (a person's name in `actor`); the header fields before them are ASCII
    return head + (sd or "-").encode("utf-8") + (b" \xef\xbb\xbf" + msg.encode("utf-8") if msg else b"")


def frame(message: bytes) -> bytes:
    """RFC 5425 octet-counting: MSG-LEN SP SYSLOG-MSG."""
    return str(len(message)).encode() + b" " + message


def hostname(cfg: SyslogSettings) -> str:
    name = cfg.hostname or socket.gethostname() or "-"
    return "".join(c for c in name if "!" <= c <= "~")[:255] or "-"


def audit_message(entry: dict, host: str) -> bytes:
    """One audit entry: every field as structured data; the details (JSON) as the message."""
    details = entry.get("details")
    details_text = details if isinstance(details, str) or details is None else canonical(details).decode()
    sd = structured(SD_AUDIT, {"seq": entry["seq"], "actor": entry["actor"], "action": entry["action"],
                               "recording": entry.get("recording_id"), "purpose": entry.get("purpose"),
                               "case": entry.get("case_ref"), "client": entry.get("client"),
                               "prev": entry["prev_hash"], "hash": entry["hash"]})
    return format_message(PRI_AUDIT, entry["time"], host, "audit", sd, details_text or "")


def checkpoint_message(cp: dict, host: str) -> bytes:
    sd = structured(SD_CHECKPOINT, {"count": cp["count"], "head": cp["head"], "signer": cp["signer"],
                                    "signature": cp["signature"]})
    return format_message(PRI_AUDIT, cp["time"], host, "checkpoint", sd, canonical(cp).decode())


def alert_message(episode: dict, host: str, closing: bool) -> bytes:
    sd = structured(SD_ALERT, {"episode": episode["id"], "kind": episode["kind"],
                               "subject": episode["subject"] or None, "state": "closed" if closing else "open",
                               "opened": episode["opened_at"], "closed": episode.get("closed_at")})
    when = episode["closed_at"] if closing else episode["opened_at"]
    return format_message(PRI_ALERT_CLOSE if closing else PRI_ALERT_OPEN, when, host, "alert", sd,
                          episode["detail"])


# The connection ---------------------------------------------------------------------------------------

def _address(cfg: SyslogSettings) -> tuple[str, int]:
    host, _, port = cfg.server.rpartition(":")
    return host.strip("[]"), int(port)


def deliver(cfg: SyslogSettings, messages: list[bytes]) -> None:
    """Send `messages` over one TLS connection and wait until the collector has read them all (see the
    module); CollectorError otherwise."""
    host, port = _address(cfg)
    where = f"log collector {cfg.server}"
    try:
        context = ssl.create_default_context(cafile=cfg.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise CollectorError(f"[syslog] ca_file {cfg.ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if cfg.cert_file:  # RFC 5425: a collector may authenticate its senders by certificate too
        try:
            context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise CollectorError(f"[syslog] cert_file {cfg.cert_file}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        raw = socket.create_connection((host, port), timeout=TIMEOUT_S)
    except OSError as exc:
        raise CollectorError(f"{where} unreachable: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        tls = context.wrap_socket(raw, server_hostname=host)
        with tls:
            _accepted(tls, where)
            tls.sendall(b"".join(frame(m) for m in messages))
            # Our close_notify, then wait for the collector to close. A clean close (its close_notify, or
            # a plain TCP close as rsyslog's GnuTLS driver does) comes only after it has read what came
            # before; one with data still unread would be a reset (ECONNRESET), which fails the batch.
            try:
                plain = tls.unwrap()
            except ssl.SSLEOFError:
                return
            with plain:
                plain.shutdown(socket.SHUT_WR)
                while plain.recv(4096):
                    pass
    except ssl.SSLCertVerificationError as exc:
        raise CollectorError(f"{where}: its certificate is not trusted ({exc.verify_message})") from None
    except ssl.SSLError as exc:
        raise CollectorError(f"{where}: TLS failed ({exc.reason or exc})") from None
    except OSError as exc:  # reset, broken pipe, timeout: what was sent is not known to have arrived
        hint = "" if cfg.cert_file else "; a collector that asks for a client certificate ([syslog] cert_file) does so"
        raise CollectorError(f"{where} broke off the connection before confirming what it got "
                             f"({getattr(exc, 'strerror', None) or exc}{hint})") from None
    finally:
        raw.close()


def _accepted(tls: ssl.SSLSocket, where: str) -> None:
    """A collector that refuses this box (a client certificate it asks for and does not get) completes the
    TLS handshake and then closes at once, without reading: a batch sent then would look delivered when
    its close comes. So wait SETTLE_S for such a close before sending; a collector that keeps the
    connection open has accepted it."""
    tls.settimeout(SETTLE_S)
    try:
        closed = tls.recv(1) == b""
    except (TimeoutError, socket.timeout):
        closed = False
    except (ssl.SSLError, OSError) as exc:
        raise CollectorError(f"{where} refused the connection after the TLS handshake ({exc}); does it ask for "
                             "a client certificate ([syslog] cert_file)?") from None
    finally:
        tls.settimeout(TIMEOUT_S)
    if closed:
        raise CollectorError(f"{where} closed the connection after the TLS handshake; does it ask for a client "
                             "certificate ([syslog] cert_file)?")


# What is still to be sent -----------------------------------------------------------------------------

@dataclass
class Forwarded:
    audit: int = 0
    checkpoints: int = 0
    alerts: int = 0
    error: str | None = None
    cursor: int = 0  # the last audit entry the collector has
    sent: list[str] = field(default_factory=list)


def _cursor(box: Box, key: str) -> int:
    return int(box.catalog.get_meta(key, "0"))


def forward(box: Box, limit_batches: int | None = None) -> Forwarded:
    """Send everything not yet sent, a batch at a time; stops at the first failure (the next run resumes
    there). Does nothing when [syslog] server is not set."""
    cfg = box.settings.syslog
    done = Forwarded(cursor=_cursor(box, CURSOR_AUDIT))
    if not cfg.server:
        return done
    host = hostname(cfg)
    db = box.catalog.db
    batches = 0
    while limit_batches is None or batches < limit_batches:
        batches += 1
        after_seq, after_cp = _cursor(box, CURSOR_AUDIT), _cursor(box, CURSOR_CHECKPOINT)
        entries = audit.entries(box.catalog, after_seq=after_seq, limit=BATCH)
        cps = list(db.query("SELECT id, count, head, time, signer, signature FROM audit_checkpoints WHERE id > ? "
                            "ORDER BY id LIMIT ?", [after_cp, BATCH]))
        opening = list(db.query("SELECT * FROM alert_episodes WHERE syslog_open = 0 AND due_at <= ? ORDER BY id "
                                "LIMIT ?", [box.now_iso(), BATCH]))
        closing = list(db.query("SELECT * FROM alert_episodes WHERE closed_at IS NOT NULL AND syslog_close = 0 "
                                "ORDER BY id LIMIT ?", [BATCH]))
        messages = [audit_message(e, host) for e in entries]
        messages += [checkpoint_message(exported(cp), host) for cp in cps]
        messages += [alert_message(e, host, closing=False) for e in opening]
        messages += [alert_message(e, host, closing=True) for e in closing]
        if not messages:
            return done
        try:
            deliver(cfg, messages)
        except CollectorError as exc:
            done.error = str(exc)
            return done
        with box.catalog.transaction():
            if entries:
                box.catalog.set_meta(CURSOR_AUDIT, str(entries[-1]["seq"]))
            if cps:
                box.catalog.set_meta(CURSOR_CHECKPOINT, str(cps[-1]["id"]))
            for e in opening:
                db.execute("UPDATE alert_episodes SET syslog_open = 1 WHERE id = ?", [e["id"]])
            for e in closing:
                db.execute("UPDATE alert_episodes SET syslog_open = 1, syslog_close = 1 WHERE id = ?", [e["id"]])
        done.audit += len(entries)
        done.checkpoints += len(cps)
        done.alerts += len(opening) + len(closing)
        done.cursor = entries[-1]["seq"] if entries else done.cursor
        if len(entries) < BATCH and len(cps) < BATCH and len(opening) < BATCH and len(closing) < BATCH:
            return done
    return done


def exported(row: dict) -> dict:
    """A stored checkpoint row as audit.stored_checkpoints exports it (the signed body and the signature)."""
    return {"type": audit.CHECKPOINT_TYPE, "v": 1, "signer": row["signer"], "count": row["count"],
            "head": row["head"], "time": row["time"], "signature": row["signature"]}


def send_test(cfg: SyslogSettings, actor: str, box_name: str, now: str) -> None:
    """One notice to the collector, to check the connection (`kluis alerts test`, the settings page)."""
    sd = structured(SD_ALERT, {"kind": "test", "state": "test", "actor": actor})
    deliver(cfg, [format_message(PRI_ALERT_CLOSE, now, hostname(cfg), "test", sd,
                                 f"Testbericht van Kluis {box_name}, verstuurd door {actor}.")])
