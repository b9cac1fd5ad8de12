"""Sending mail: SMTP with STARTTLS to the municipality's mail server, as [alerts] configures it.

The standard library's smtplib, not aiosmtplib: every caller already runs off the event loop (the alerts
job in APScheduler's worker threads, the settings page's test button through run_in_executor, the CLI), a
mail goes out a few times a day, and the box gets no new dependency for it. The connection is always
upgraded with STARTTLS against a verified certificate (the system's CAs, or [alerts] smtp_ca_file): a
server that does not offer STARTTLS gets nothing, so that alerts never travel in the clear. The password
is read from a file at each send ([alerts] smtp_password_file), never from kluis.toml.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from .config_models import AlertsSettings
from .errors import KluisError

TIMEOUT_S = 30


class MailError(KluisError):
    """The mail could not be delivered to the server (unreachable, refused, TLS or login failed)."""


def configured(cfg: AlertsSettings) -> bool:
    return bool(cfg.smtp_server and cfg.sender)


def message(cfg: AlertsSettings, to: list[str], subject: str, body: str,
            attachment: tuple[str, str] | None = None) -> EmailMessage:
    """A plain-text UTF-8 mail; `attachment`: (file name, text) as a text/plain part."""
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a machine
    msg.set_content(body, subtype="plain", charset="utf-8")
    if attachment is not None:
        name, text = attachment
        msg.add_attachment(text, subtype="plain", charset="utf-8", filename=name)
    return msg


def _password(cfg: AlertsSettings) -> str:
    try:
        with open(cfg.smtp_password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as exc:
        raise MailError(f"[alerts] smtp_password_file {cfg.smtp_password_file}: {exc.strerror}") from None


def tls_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"CA file {ca_file}: {getattr(exc, 'strerror', None) or exc}") from None


def send(cfg: AlertsSettings, msg: EmailMessage) -> list[str]:
    """Deliver `msg` to the server for every address in its To header; MailError when it was not taken.
    Returns the addresses the server refused while it took the others (sending again would repeat the
    mail to those)."""
    if not configured(cfg):
        raise MailError("no mail server or sender set ([alerts] smtp_server, sender)")
    context = tls_context(cfg.smtp_ca_file)
    where = f"{cfg.smtp_server}:{cfg.smtp_port}"
    try:
        with smtplib.SMTP(cfg.smtp_server, cfg.smtp_port, timeout=TIMEOUT_S) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise MailError(f"mail server {where} does not offer STARTTLS; nothing was sent in the clear")
            smtp.starttls(context=context)
            smtp.ehlo()
            if cfg.smtp_user:
                smtp.login(cfg.smtp_user, _password(cfg))
            refused = smtp.send_message(msg)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"mail server {where} refused the login of {cfg.smtp_user!r}: {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"mail server {where} refused every recipient: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"mail server {where}: {exc}") from None
    except ssl.SSLError as exc:
        raise MailError(f"mail server {where}: TLS failed ({exc.reason or exc})") from None
    except (OSError, socket.timeout) as exc:
        raise MailError(f"mail server {where} unreachable: {exc.strerror or exc}") from None
    return sorted(refused)
