"""What kluis.toml may hold: one model per [table], each setting with its type, default, bounds and meaning.

These models are the single source of the settings: appliance.config loads the file through them (an unknown
key or a value out of bounds is refused, never ignored), appliance.config_docs writes the commented template
and docs/settings.md from them, and the web UI's settings page validates with them. Field order is the order
in which the template and the reference list them.
"""

from __future__ import annotations

from datetime import time as dtime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import KluisError

Days = Annotated[int, Field(ge=1, le=3650)]  # a retention term


def parse_window(window: str) -> tuple[dtime, dtime] | None:
    """A daily window "HH:MM-HH:MM" (local time; may wrap past midnight) as (first, last); "" is None."""
    if not window:
        return None
    try:
        first, last = (dtime.fromisoformat(part.strip()) for part in window.split("-"))
    except ValueError:
        raise KluisError(f"sync window {window!r}: use HH:MM-HH:MM, e.g. 22:00-06:00") from None
    return first, last


def parse_listen(listen: str) -> tuple[str, int] | None:
    """A listen address "HOST:PORT" (HOST an IPv4 address, "[IPv6]" or a host name; ":PORT" or
    "0.0.0.0:PORT" = every address) as (host, port); "" is None (off). KluisError when it is not one."""
    listen = listen.strip()
    if not listen:
        return None
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = ":" in host and all(c in "0123456789abcdefABCDEF:." for c in host)
    else:
        valid_host = host == "" or (len(host) <= 253 and all(
            0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            and not label.startswith("-") for label in host.split(".")))
    if not sep or not valid_host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise KluisError(f"listen address {listen!r}: use HOST:PORT, e.g. 0.0.0.0:8444")
    return host or "0.0.0.0", int(port)


class Section(BaseModel):
    # A typo in kluis.toml must be an error, not a setting silently left at its default.
    model_config = ConfigDict(extra="forbid")


class BoxSettings(Section):
    name: str = Field("Kluis", min_length=1, max_length=200,
                      description="the district office, shown in the web UI and on forms")
    municipality: str = Field("", max_length=200,
                              description='the municipality, as the transfer form names the issuing party '
                                          '(e.g. "Gemeente Utrecht"); empty: the office name is used')
    timezone: str = Field("Europe/Amsterdam",
                          description="how times without a zone (on the command line) are read")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Amsterdam)") from None
        return value


Role = Literal["keeper", "team_leader", "privacy_officer", "officer", "auditor"]  # appliance.roles' five
# What `kluis init` and the first-boot wizard write into a new box's kluis.toml: the roles that open footage
# or hold the keys log in with a second factor. A kluis.toml without the setting requires it of nobody.
TOTP_REQUIRED_NEW_BOX: list[str] = ["keeper", "privacy_officer"]


class SecuritySettings(Section):
    kdf_profile: Literal["moderate", "interactive"] = Field(
        "moderate", description='Argon2id cost of the key slots: "moderate" or "interactive"')
    totp_required: list[Role] = Field(
        [], description="roles whose users must log in with a second factor (TOTP): a user of such a role "
                        "without one is sent to set it up at the next web login, and the CLI refuses them until "
                        'then; new boxes: ["keeper", "privacy_officer"]',
        json_schema_extra={"example": ["keeper", "privacy_officer"]})

    @field_validator("totp_required")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each role once")
        return value


class StorageSettings(Section):
    chunk_size: int = Field(1024 * 1024, ge=64 * 1024, le=4 * 1024 * 1024,
                            description="container chunk size in bytes for imports")
    reserve_mb: int = Field(512, ge=0, description="ingest stops before free space drops below this")


class DockSettings(Section):
    interfaces: list[str] = Field(
        [], description="mDNS on these interfaces (names or IPv4 addresses); [] = all with IPv4")
    concurrency: int = Field(3, ge=1, le=64, description="cameras offloading at the same time")
    probe_interval_s: float = Field(
        10, gt=0, le=3600, description="how often paired cameras are asked whether they are still docked")
    retry_s: float = Field(5, gt=0, le=3600,
                           description="wait before retrying an offload that failed (cut link, full disk)")
    read_timeout_s: float = Field(
        30, gt=0, le=3600, description="a camera silent this long mid-transfer is taken as gone (resumes later)")


class RetentionSettings(Section):
    default_days: int = Field(28, ge=1, le=3650,
                               description="bewaartermijn: days a recording is kept, counted from its end")
    review_days: int = Field(90, ge=1, le=3650,
                              description="a hold without an end date comes up for review this often")
    grace_days: int = Field(7, ge=0, le=365, description="after the last hold ends, kept at least this long")
    sweep_minutes: float = Field(
        15, gt=0, le=1440, description="how often expired recordings are deleted (and at start)")
    categories: dict[str, Days] = Field(
        {}, description="a term per category of recording, in days",
        json_schema_extra={"example": {"incident": 90}})


# The reasons an officer may give for a recording (appliance/recording_reasons.py): code = the label the
# officer chooses from. The built-in codes are translated in the English UI; another code shows its label.
DEFAULT_REASONS: dict[str, str] = {"aggression": "agressie", "insult": "belediging", "threat": "bedreiging",
                   "unsafe_feeling": "onveilig gevoel", "other": "anders"}


class ReasonsSettings(Section):
    """Why a recording was made: the officer says so after the shift (or the team leader does)."""
    choices: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
                  Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        {}, description="the reasons an officer chooses from, code = label (codes: lower-case letters, digits, _); "
                        "none given: the five below",
        json_schema_extra={"example": dict(DEFAULT_REASONS)})
    free_text: list[str] = Field(["other"], description="the reasons (codes) that ask for a text of their own")
    todo_days: int = Field(3, ge=1, le=365, description="a recording without a reason this many days after it "
                                                        "ended is listed under Te doen (officer and team leader)")

    def offered(self) -> dict[str, str]:
        """The reasons in force: those configured, or the built-in five."""
        return dict(self.choices) or dict(DEFAULT_REASONS)

    @model_validator(mode="after")
    def _known_free_text(self) -> "ReasonsSettings":
        unknown = [code for code in self.free_text if code not in self.offered()]
        if unknown:
            raise ValueError(f"free_text names reasons that are not among the choices: {', '.join(unknown)}")
        return self


class AuditSettings(Section):
    checkpoint_minutes: float = Field(
        60, gt=0, le=1440, description="how often the box signs the audit log's head (and at shutdown)")
    term_days: int = Field(
        730, ge=90, le=36500,
        description="bewaartermijn of the audit log: older entries are pruned (once a day) under a signed "
                    "pruning checkpoint, except those about a recording still stored and every entry after them")


class WebSettings(Section):
    idle_minutes: int = Field(15, ge=1, le=480,
                              description="a web UI session ends after this long without a request")
    map_url: str = Field("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}",
                         max_length=500,
                         description='where a recording\'s location links to ({lat}, {lon}); "" = no link')


class AxisSettings(Section):
    listen: str = Field("", description='the Axis content destination (docs/axis.md), e.g. "0.0.0.0:8444"; '
                                        '"" = off')
    urls: list[str] = Field([], description='its addresses for the connection file, e.g. '
                                            '["https://kluis.local:8444/auth/v1.0"] '
                                            "([] = this host's name and the listen port)")
    max_uploads: int = Field(4, ge=1, le=256, description="clip uploads at once; more wait for a slot ...")
    queue_wait_s: float = Field(10, ge=0, le=600,
                                description='... this long, then get "busy, retry soon" (503)')
    max_clip_mb: int = Field(8192, ge=1, description="a larger clip is refused as never storable (400)")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            parse_listen(value)
        except KluisError:
            raise ValueError('HOST:PORT, e.g. "0.0.0.0:8444", or "" (off)') from None
        return value.strip()


class UsbSettings(Section):
    concurrency: int = Field(3, ge=1, le=64, description="USB cameras read at the same time "
                                                         "(a 10-port dock: the rest wait their turn)")


class RequestsSettings(Section):
    deadline_months: int = Field(
        1, ge=1, le=24, description="an access request or objection is answered within this many calendar months")
    window_minutes: int = Field(
        15, ge=0, le=1440, description="search this long either side of the time a requester gives (widened per "
                                       "camera by how much its clock offset changed between the docks around it)")
    warn_days: int = Field(
        7, ge=0, le=365, description="the overview lists open requests this close to their deadline, and late ones")
    place_radius_m: int = Field(
        250, ge=10, le=50_000, description="a place given on the map matches recordings with a location this close "
                                           "(metres); recordings without a location are never excluded by place")
    contact: str = Field("", max_length=500,
                         description="how a requester reaches the municipality about a request (address, telephone, "
                                     "e-mail), printed on every letter; empty: not printed")


class RedactionSettings(Section):
    """The face detector of redacted copies (appliance/redaction/detectors.py); the defaults are the
    measured best on the test material (docs/redaction.md)."""
    detector: Literal["centerface", "haar"] = Field(
        "centerface", description='"centerface" (a neural network that finds small, turned and partly covered '
                                  'faces) or "haar" (OpenCV\'s Haar cascades, kept for comparison: they miss '
                                  'faces under about 60 px and turned ones)')
    width: int = Field(960, ge=320, le=3840, description="frames wider than this are scaled down to it for the "
                                                         "search (more pixels find smaller faces, cost more and "
                                                         "can find faces that are not there)")
    threshold: float = Field(0.4, ge=0.05, le=0.95, description="centerface: how sure the network must be that "
                                                                "a spot is a face (lower: more faces found, more "
                                                                "false ones)")
    nms: float = Field(0.3, ge=0.05, le=0.95, description="centerface: boxes that overlap more than this "
                                                          "(intersection over union) are one face")


class HandoverSettings(Section):
    single_approval: bool = Field(
        False, description="true: the preparer may approve a handover alone (small municipalities); "
                           "the transfer form and the manifest then say so")


class SyncSettings(Section):
    archive_url: str = Field("", max_length=299, description="the central archive (set by `kluis sync enroll`; "
                                                             "set here if it moves)")
    central_purposes: list[str] = Field(["police_report", "requisition", "complaint"],
                                        description="holds that send footage centrally")
    window: str = Field("", description='send only between these local times, e.g. "22:00-06:00"; "" = always')
    bandwidth_kbps: int = Field(0, ge=0, le=10_000_000, description="upload limit in KiB/s; 0 = no limit")
    interval_s: float = Field(300, gt=0, le=86400, description="how often `kluis serve` syncs")
    retry_max_s: float = Field(900, gt=0, le=86400,
                               description="longest wait between attempts when the archive is unreachable")
    pass_retry_s: float = Field(120, ge=0, le=86400,
                                description="how long one pass keeps retrying a cut upload before it gives up")

    @field_validator("archive_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not (value.startswith("https://") and " " not in value):
            raise ValueError('an https:// address, or ""')
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        try:
            parse_window(value)
        except KluisError:
            raise ValueError('two local times like "22:00-06:00", or ""') from None
        return value


Addresses = list[Annotated[str, Field(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$", max_length=254)]]


class AlertsSettings(Section):
    """Alerts by e-mail (appliance/alerts.py, appliance/mail.py): SMTP with STARTTLS, addresses per role."""
    smtp_server: str = Field("", max_length=253, description='the mail server (SMTP with STARTTLS); "" = no mail')
    smtp_port: int = Field(587, ge=1, le=65535, description="its port (submission: 587)")
    sender: str = Field("", max_length=254, description='the From address, e.g. "kluis-noord@gemeente.nl"')
    smtp_user: str = Field("", max_length=254, description='the login at the mail server; "" = none')
    smtp_password_file: str = Field("", max_length=4096,
                                    description="a file holding that login's password (first line), not in here")
    smtp_ca_file: str = Field("", max_length=4096, description='CA certificates (PEM) the mail server\'s '
                                                               'certificate must chain to; "" = the system\'s')
    keeper: Addresses = Field([], description="addresses of the keepers (disk, cameras, clock, backup, sync, "
                                              "device alerts, audit log)")
    privacy_officer: Addresses = Field([], description="addresses of the privacy officers (requests near their "
                                                       "deadline, handovers waiting, audit log)")
    team_leader: Addresses = Field([], description="addresses of the team leaders (cameras not docked)")
    auditor: Addresses = Field([], description="addresses of the auditors (audit log verification failing)")
    checkpoints: Addresses = Field([], description="addresses that get every signed audit checkpoint "
                                                   "(a third place that holds them)")
    digest: Addresses = Field([], description="of the addresses above, those that get one mail a day (a digest) "
                                              "instead of a mail per alert")
    digest_time: str = Field("07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                             description="when the daily digest goes out (local time, HH:MM)")
    check_minutes: float = Field(5, gt=0, le=1440, description="how often the box checks its alerts")
    disk_free_percent: int = Field(10, ge=1, le=90, description="alert when less of the data disk is free")
    not_docked_days: int = Field(3, ge=1, le=365, description="alert when a paired camera has not docked this long")
    backup_overdue_days: int = Field(7, ge=0, le=365, description="alert when the last backup is older; 0 = off")
    sync_failing_hours: int = Field(24, ge=1, le=720, description="alert when archive sync has failed this long")
    verify_hours: int = Field(24, ge=1, le=720, description="how often the audit log's chain is verified")


class SyslogSettings(Section):
    """The audit log, alerts and checkpoints to the municipality's log collector (appliance/syslog.py)."""
    server: str = Field("", max_length=300, description='the collector, "host:port": RFC 5424 over TLS '
                                                        '(RFC 5425, usually port 6514); "" = off')
    ca_file: str = Field("", max_length=4096, description='CA certificates (PEM) the collector\'s certificate '
                                                          'must chain to; "" = the system\'s')
    cert_file: str = Field("", max_length=4096, description='a client certificate (PEM) for a collector that asks '
                                                            'for one; "" = none')
    key_file: str = Field("", max_length=4096, description="its private key (PEM)")
    hostname: str = Field("", max_length=255, pattern=r"^[!-~]*$",
                          description='HOSTNAME in each message; "" = this machine\'s name')

    @field_validator("server")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
                raise ValueError('"host:port", e.g. "logs.gemeente.nl:6514", or ""')
        return value


HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def sftp_url_problem(url: str) -> str | None:
    """Why `url` is not a network backup target sftp://USER@HOST[:PORT]/PATH; None when it is one."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a port number"
    if parts.scheme != "sftp" or not parts.hostname or not parts.username or parts.password is not None:
        return "a network target is sftp://USER@HOST[:PORT]/PATH"
    path = unquote(parts.path) or "/"
    if not path.startswith("/") or ".." in path.split("/") or any(c in url for c in " \t\n'\""):
        return "the path on the server must be absolute, without '..' or spaces"
    if port == 0:
        return "not a port number"
    return None


def host_key(text: str) -> str:
    """A pinned SSH host key as "TYPE BASE64": the line `ssh-keyscan` prints may come with its host first
    and a comment after; ValueError when it holds no public key."""
    import base64
    import binascii

    fields = text.split()
    while fields and fields[0] not in HOST_KEY_TYPES:
        fields = fields[1:]  # the host name(s) of a known_hosts line
    if len(fields) < 2:
        raise ValueError("an SSH host key, e.g. \"ssh-ed25519 AAAA...\" (as ssh-keyscan prints it)")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key after the type is not base64") from None
    if not blob.startswith(len(fields[0]).to_bytes(4, "big") + fields[0].encode()):
        raise ValueError("the key does not match its type")
    return f"{fields[0]} {fields[1]}"


class BackupSettings(Section):
    """The targets `kluis backup` without --to backs up to, and the sweep's deletions reach (docs/backup.md)."""
    disk: str = Field("/media/kluis-backup/kluis", max_length=4096,
                      description="the folder on the KLUIS-BACKUP disk: backed up to when it is there (the disk "
                                  'plugged in and mounted); "" = no disk')
    network: str = Field("", max_length=500,
                         description='a network target, "sftp://USER@HOST[:PORT]/PATH" (a NAS or server with '
                                     'SFTP; docs/backup.md, "A network target"); "" = none')
    network_host_key: str = Field("", max_length=4000,
                                  description="the server's SSH host key the box pins, as ssh-keyscan prints it "
                                              '("ssh-ed25519 AAAA..."; check its fingerprint with the server\'s '
                                              'keeper); "" = the keys in keys/backup_known_hosts')
    ssh_key_file: str = Field("", max_length=4096,
                              description="the box's private key for logging in to the server; \"\" = "
                                          "keys/backup_ssh_ed25519 in the data directory (`kluis backup ssh-key` "
                                          "makes it and prints the public key to give the server)")
    network_time: str = Field("03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                              description="the network backup is made once a day from this local time on "
                                          "(HH:MM; the appliance's timer asks every 15 minutes)")
    keep: int = Field(7, ge=1, le=365, description="backups kept on each target (expired ones go sooner)")

    @field_validator("network")
    @classmethod
    def _sftp(cls, value: str) -> str:
        value = value.strip()
        problem = sftp_url_problem(value) if value else None
        if problem:
            raise ValueError(f'{problem}; or "" (none)')
        return value

    @field_validator("network_host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        return host_key(value) if value.strip() else ""


class PrivacySettings(Section):
    """What the processing register (appliance/register.py) cannot read from the box itself."""
    controller: str = Field("", max_length=300,
                            description='the controller (verwerkingsverantwoordelijke) and its address, e.g. "College '
                                        'van B&W van Utrecht, Stadsplateau 1"; "" = [box] municipality')
    dpo: str = Field("", max_length=300, description='the data protection officer (FG) and how to reach them, '
                                                     'e.g. "FG gemeente Utrecht, privacy@utrecht.nl"; "" = not stated')
    legal_basis: str = Field("", max_length=400,
                             description="the legal basis (grondslag) of the processing, as the municipality decided "
                                         'it; "" = not stated')


class Settings(BaseModel):
    """All of kluis.toml."""

    model_config = ConfigDict(extra="forbid")

    box: BoxSettings = Field(default_factory=BoxSettings, description="The box itself.")
    security: SecuritySettings = Field(default_factory=SecuritySettings, description="Key slots.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="The vault on disk.")
    dock: DockSettings = Field(default_factory=DockSettings, description="Docking stations (mDNS, offload).")
    retention: RetentionSettings = Field(default_factory=RetentionSettings,
                                         description="Retention (bewaartermijn) and the sweep.")
    reasons: ReasonsSettings = Field(default_factory=ReasonsSettings,
                                     description="The reasons for a recording that officers give after the shift.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="The audit log.")
    web: WebSettings = Field(default_factory=WebSettings, description="The local web UI.")
    axis: AxisSettings = Field(default_factory=AxisSettings, description="Axis body-worn content destination.")
    usb: UsbSettings = Field(default_factory=UsbSettings, description="USB cameras.")
    requests: RequestsSettings = Field(default_factory=RequestsSettings,
                                       description="Requests of people who were filmed (inzage, bezwaar, klacht).")
    handover: HandoverSettings = Field(default_factory=HandoverSettings,
                                       description="Handovers of footage (overdracht).")
    redaction: RedactionSettings = Field(default_factory=RedactionSettings,
                                         description="Redacted copies: the face detector (docs/redaction.md).")
    sync: SyncSettings = Field(default_factory=SyncSettings, description="Sync to the central archive.")
    alerts: AlertsSettings = Field(default_factory=AlertsSettings,
                                   description="Alerts by e-mail to the people of each role (docs/alerts.md).")
    syslog: SyslogSettings = Field(default_factory=SyslogSettings,
                                   description="The audit log and alerts to the municipality's log collector.")
    backup: BackupSettings = Field(default_factory=BackupSettings,
                                   description="Backup targets: the KLUIS-BACKUP disk and a network target.")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings,
                                     description="What the processing register and the DPIA's facts (kluis register) "
                                                 "cannot read from the box.")

    def as_dict(self) -> dict:
        """The settings as plain tables, as the TOML file spells them."""
        return self.model_dump()


def section_model(name: str) -> type[Section]:
    """The model of one table of kluis.toml ([retention] -> RetentionSettings)."""
    model = Settings.model_fields[name].annotation
    if not (isinstance(model, type) and issubclass(model, Section)):
        raise KeyError(f"[{name}] is not a table of settings")
    return model


def bounds(section: str, key: str) -> tuple[float | None, float | None]:
    """The (lowest, highest) value a number setting allows; None where it has no bound. A bound that
    excludes its own value (gt, lt) is returned as it stands: the docs say "more than" for those."""
    low = high = None
    for rule in section_model(section).model_fields[key].metadata:
        low = getattr(rule, "ge", getattr(rule, "gt", low))
        high = getattr(rule, "le", getattr(rule, "lt", high))
    return low, high
