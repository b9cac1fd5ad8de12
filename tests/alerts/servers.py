"""The real servers the alert tests talk to: aiosmtpd (a mail server that offers STARTTLS and requires it
before a login) and rsyslogd (the log collector, RFC 5425 over TLS with GnuTLS), both with a test CA and
a server certificate for 127.0.0.1 made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path  # a client certificate of the same CA (the box's, for a collector that asks for one)
    client_key: Path


def make_certs(folder: Path) -> Certs:
    """A test CA and a certificate it signed for 127.0.0.1 (and localhost)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kluis test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    def issue(common_name: str, usage, names: list) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    key, cert = issue("localhost", x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                      [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))])
    client_key, client = issue("kluis-noord", x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, [])
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
                  folder / "client.key")
    certs.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for path, item in ((certs.cert, cert), (certs.client_cert, client)):
        path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    for path, secret in ((certs.key, key), (certs.client_key, client_key)):
        path.write_bytes(secret.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return certs


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# The mail server -------------------------------------------------------------------------------------------

@dataclass
class Received:
    envelope_to: list[str]
    mail_from: str
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class MailServer:
    port: int
    inbox: list[Received] = field(default_factory=list)
    controller: object = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.inbox if address in r.envelope_to]


def start_mail_server(certs: Certs, user: str, password: str) -> MailServer:
    """aiosmtpd on a free port: STARTTLS offered, and required before AUTH and before any mail."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    server = MailServer(free_port())

    class Handler:
        async def handle_DATA(self, smtp_server, session, envelope):
            message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            login = session.auth_data.login.decode() if session.auth_data else None
            server.inbox.append(Received(list(envelope.rcpt_tos), envelope.mail_from, message,  # type: ignore
                                         tls=session.ssl is not None, login=login))
            return "250 OK"

    def authenticator(smtp_server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    controller = Controller(Handler(), hostname=HOST, port=server.port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True, auth_required=True)
    controller.start()
    server.controller = controller
    return server


# The log collector ------------------------------------------------------------------------------------------

FIELDS = ("msgid", "timestamp", "hostname", "app", "pri", "sd", "msg")
TEMPLATE = "%msgid%\\t%timereported:::date-rfc3339%\\t%hostname%\\t%app-name%\\t%pri%\\t%structured-data%\\t%msg%\\n"


class Rsyslog:
    """rsyslogd in the foreground, with its own configuration: imtcp with the GnuTLS driver on a free port,
    each message written to a file as the fields rsyslog's RFC 5424 parser took from it."""

    def __init__(self, folder: Path, certs: Certs, port: int | None = None, auth_mode: str = "anon"):
        self.folder, self.certs, self.auth_mode = folder, certs, auth_mode
        self.port = port or free_port()
        self.out = folder / "received.log"
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "work").mkdir(exist_ok=True)

    def start(self) -> None:
        conf = self.folder / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.folder / 'work'}" maxMessageSize="64k"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{self.certs.ca}"
       DefaultNetstreamDriverCertFile="{self.certs.cert}"
       DefaultNetstreamDriverKeyFile="{self.certs.key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="{self.auth_mode}")
input(type="imtcp" address="{HOST}" port="{self.port}")
template(name="fields" type="string" string="{TEMPLATE}")
action(type="omfile" file="{self.out}" template="fields" flushOnTXEnd="on" asyncWriting="off")
""")
        self.proc = subprocess.Popen([shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f", str(conf),
                                      "-i", str(self.folder / "rsyslogd.pid")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd ended: {self.proc.stdout.read().decode(errors='replace')}")  # type: ignore
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def lines(self) -> list[dict]:
        if not self.out.exists():
            return []
        rows = []
        for line in self.out.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t", len(FIELDS) - 1)
            rows.append(dict(zip(FIELDS, parts)))
        return rows

    def wait_for(self, count: int, timeout: float = 20) -> list[dict]:
        """The lines written once there are at least `count` (rsyslog writes after it has read)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.lines()
            if len(rows) >= count:
                return rows
            time.sleep(0.05)
        return self.lines()


def parse_sd(text: str) -> dict[str, dict[str, str]]:
    """RFC 5424 STRUCTURED-DATA into {SD-ID: {name: value}} (with its escapes undone)."""
    found: dict[str, dict[str, str]] = {}
    i = 0
    if text == "-":
        return found
    while i < len(text):
        assert text[i] == "[", text[i:]
        end_id = min(j for j in (text.find(" ", i), text.find("]", i)) if j != -1)
        sd_id = text[i + 1:end_id]
        params: dict[str, str] = {}
        i = end_id
        while text[i] == " ":
            eq = text.index("=", i)
            name = text[i + 1:eq]
            assert text[eq + 1] == '"'
            j, value = eq + 2, []
            while text[j] != '"':
                if text[j] == "\\" and text[j + 1] in '"\\]':
                    j += 1
                value.append(text[j])
                j += 1
            params[name] = "".join(value)
            i = j + 1
        assert text[i] == "]"
        found[sd_id] = params
        i += 1
    return found
