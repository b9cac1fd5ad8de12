"""The processing register entry (AVG art. 30) and the DPIA's fact sheet, from the box's own configuration
and code: purposes (appliance/purposes.py), roles and who may view (appliance/roles.py), retention terms
and categories (kluis.toml), recipients (handover, archive, requester, log collector, mail), and the
security measures this box really has (encryption, TLS, second factor per role, the signed audit log and
its witness, backups, the TPM2).

Every statement is made from a fact read here, never as fixed prose that could be false for this box: a
box that requires no second factor says so, one not enrolled at an archive names no archive, a setting
the box cannot know ([privacy] controller, dpo, legal_basis) is shown as not stated. Dutch text: the
register is the municipality's document. Rendering (Markdown, PDF): appliance/register_render.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from . import audit_prunes, backup_status, config as config_mod, handover, recording_search, roles, tls, users, witness
from .box import Box
from .clock import from_iso, to_iso
from .config_models import Settings
from .outbox import archive_url, enrollment
from .purposes import PURPOSES, needs_case_ref

ROLE_NL = {roles.KEEPER: "beheerder", roles.TEAM_LEADER: "teamleider", roles.PRIVACY_OFFICER: "privacybeheerder",
           roles.OFFICER: "handhaver", roles.AUDITOR: "auditor"}
SCOPE_NL = {roles.SCOPE_ALL: "alle opnames", roles.SCOPE_TEAM: "opnames van het eigen team",
            roles.SCOPE_OWN: "eigen opnames", None: "geen opnames"}
PERMISSION_NL = {
    roles.RECORDINGS_LIST: "opnames zoeken en gegevens inzien", roles.RECORDINGS_VIEW: "beelden bekijken (met doel)",
    roles.RECORDINGS_ANNOTATE: "reden van opname vastleggen", roles.HOLDS_MANAGE: "blokkeringen plaatsen en opheffen",
    roles.RECORDINGS_EXPORT: "opnames exporteren", roles.CAMERAS_MANAGE: "camera's koppelen en toewijzen",
    roles.USERS_MANAGE: "gebruikers en rollen beheren", roles.AUDIT_READ: "logboek lezen",
    roles.DELETION_REPORT: "verwijderverslag lezen", roles.STATS_READ: "statistieken zonder persoonsgegevens",
    roles.SETTINGS_MANAGE: "instellingen beheren", roles.HANDOVER_PREPARE: "overdracht voorbereiden",
    roles.HANDOVER_APPROVE: "overdracht goedkeuren", roles.HANDOVER_READ: "overdrachtsregister lezen",
    roles.REQUESTS_MANAGE: "verzoeken van betrokkenen behandelen", roles.RECORDINGS_REDACT: "onherkenbaar maken",
    roles.REGISTER_READ: "verwerkingsregister en DPIA-feitenblad maken",
}
REASON_NL = {"aggression": "agressie", "insult": "belediging", "threat": "bedreiging",
             "unsafe_feeling": "onveilig gevoel", "other": "anders (met toelichting)"}
# The catalog's columns of a recording that say something about a person or an event, in words; the rest
# (hashes, sizes, where it is stored) is technical and named together.
RECORDING_COLUMNS_NL = {
    "officer": "naam van de handhaver", "team": "team van de handhaver", "camera_serial": "camera (serienummer)",
    "start_time": "begin- en eindtijd", "reason": "reden van de opname", "warning_given": "of er is gewaarschuwd",
    "category": "categorie (bepaalt de bewaartermijn)", "source": "hoe de opname binnenkwam (dock, USB, Axis)",
    "latitude": "plaats (coördinaten)", "location": "plaats",
}
SOURCE_NL = {"dock": "dock", "usb": "USB", "axis": "Axis", "import": "handmatige import",
             "redaction": "onherkenbaar gemaakte kopie"}
NOT_STATED = "niet vastgelegd in de box (in te vullen door de gemeente: {where})"


@dataclass
class Part:
    """One section: labelled rows, bullets, an optional table (header, rows) and a closing note."""
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    note: str = ""


@dataclass
class Document:
    kind: str        # "register" or "dpia"
    title: str
    subtitle: str
    made_at: str     # local time, as the document shows it
    parts: list[Part]


def _local(iso: str | None, tz: str) -> str:
    if not iso:
        return "nooit"
    return from_iso(iso).astimezone(ZoneInfo(tz)).strftime("%d-%m-%Y %H:%M")


def _list(words: list[str], empty: str = "geen") -> str:
    words = [w for w in words if w]
    if not words:
        return empty
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " en " + words[-1]


def _holders(permission: str) -> str:
    """The Dutch names of the roles that hold a permission (roles.PERMISSIONS)."""
    return _list([ROLE_NL[r] for r in roles.ROLES if roles.allowed(r, permission)], "niemand")


def _days(n: int) -> str:
    return f"{n} dag" if n == 1 else f"{n} dagen"


@dataclass
class Facts:
    """What the documents are made from, read once."""
    box: Box
    settings: Settings
    users_by_role: dict[str, int]
    totp_by_role: dict[str, int]
    slots: int
    enrolled: dict | None

    @property
    def tz(self) -> str:
        return self.settings.box.timezone

    def scalar(self, sql: str, params: list | None = None) -> int:
        return int(self.box.catalog.db.execute(sql, params or []).fetchone()[0] or 0)


def facts(box: Box) -> Facts:
    settings = config_mod.load(box.data_dir)  # as kluis.toml says now (the web UI runs for months)
    db = box.catalog.db
    by_role: dict[str, int] = {role: 0 for role in roles.ROLES}
    totp: dict[str, int] = {role: 0 for role in roles.ROLES}
    slots = 0
    for role, disabled, secret, slot in db.execute("SELECT role, disabled, totp_secret, slot FROM users").fetchall():
        if disabled:
            continue
        by_role[role] = by_role.get(role, 0) + 1
        totp[role] = totp.get(role, 0) + (1 if secret else 0)
        slots += 1 if slot else 0
    return Facts(box, settings, by_role, totp, slots, _enrollment(box))


def _enrollment(box: Box) -> dict | None:
    enrolled = enrollment(box)
    if not enrolled:
        return None
    return {"archive_id": enrolled.get("archive_id", ""), "url": archive_url(box, enrolled)}


# The parts both documents share ---------------------------------------------------------------------

def controller_part(f: Facts) -> Part:
    reg, box = f.settings.privacy, f.settings.box
    controller = reg.controller or box.municipality or NOT_STATED.format(where="[privacy] controller")
    return Part("Verwerkingsverantwoordelijke", rows=[
        ("Verwerkingsverantwoordelijke", controller),
        ("Functionaris gegevensbescherming", reg.dpo or NOT_STATED.format(where="[privacy] dpo")),
        ("Vestiging van de box", box.name),
        ("Grondslag", reg.legal_basis or NOT_STATED.format(where="[privacy] legal_basis")),
    ])


def purposes_part(f: Facts) -> Part:
    viewers = {code: [ROLE_NL[r] for r in roles.ROLES if roles.may_view_purpose(r, code)] for code in PURPOSES}
    central = set(f.settings.sync.central_purposes)
    rows = []
    for code, label in PURPOSES.items():
        rows.append([label.nl, _list(viewers[code], "niemand"),
                     "ja" if needs_case_ref(code) else "nee",
                     "nee" if code in handover.NOT_HANDED_OVER else "ja",
                     "ja" if f.enrolled and code in central else "nee"])
    reasons = [REASON_NL.get(code, code) for code in recording_search.REASONS]
    return Part(
        "Doeleinden",
        items=[f"Opnemen: de handhaver zet de bodycam aan; na de dienst legt de {_holders(roles.RECORDINGS_ANNOTATE)} de "
               f"reden vast ({_list(reasons)}). De reden is informatie over de opname, geen doel om beelden te bekijken.",
               "Beelden worden alleen bekeken, bewaard (blokkering) of verstrekt voor een van de doelen hieronder; "
               "de box vraagt het doel en legt het vast in het logboek voordat iets wordt getoond."],
        table=(["Doel", "Mag beelden bekijken", "Zaaknummer verplicht", "Mag worden overgedragen",
                "Naar centraal archief"], rows),
    )


def _recording_columns(f: Facts) -> list[str]:
    columns = [r[1] for r in f.box.catalog.db.execute("PRAGMA table_info(recordings)").fetchall()]
    said = [text for column, text in RECORDING_COLUMNS_NL.items() if column in columns]
    return said + ["technische gegevens (opname-id, hash, grootte, klokafwijking van de camera)"]


def subjects_part(f: Facts) -> Part:
    officers = f.users_by_role.get(roles.OFFICER, 0)
    cameras = f.scalar("SELECT COUNT(*) FROM devices WHERE paired = 1")
    requests = f.scalar("SELECT COUNT(*) FROM requests")
    return Part("Betrokkenen en persoonsgegevens", rows=[
        ("Gefilmde personen", "personen die de handhaver met de bodycam filmt, ook omstanders: beeld en, als de "
                              "camera het opneemt, geluid"),
        ("Handhavers", f"de dragers van de camera's ({officers} gebruiker(s) met de rol handhaver; {cameras} "
                       f"camera('s) gekoppeld)"),
        ("Gebruikers van de box", _list([f"{n} {ROLE_NL[r]}" for r, n in f.users_by_role.items() if n])),
        ("Verzoekers", f"wie om inzage vraagt, bezwaar maakt of klaagt ({requests} verzoek(en) geregistreerd)"),
        ("Ontvangers van een overdracht", "naam, organisatie en dienstnummer op het overdrachtsformulier"),
        ("Gegevens per opname", "de beelden zelf (versleuteld), " + _list(_recording_columns(f))),
        ("Gegevens per gebruiker", "naam, volledige naam en functie, rol, team, een van het wachtwoord afgeleide "
                                   "sleutel (Argon2id), het geheim van de tweede factor"),
        ("Logboek", "wie wat deed, wanneer, met welk doel en zaaknummer, en vanaf welk adres"),
        ("Verzoeken", "naam en contactgegevens van de verzoeker, het gegeven tijdstip en de plaats, de uitkomst"),
    ])


def recipients_part(f: Facts) -> Part:
    s = f.settings
    approved = f.scalar("SELECT COUNT(*) FROM handovers WHERE state = ?", [handover.APPROVED])
    approval = (f"voorbereid door een {_holders(roles.HANDOVER_PREPARE)}, goedgekeurd door een "
                f"{_holders(roles.HANDOVER_APPROVE)}" +
                ("; één persoon mag beide doen: enkelvoudige goedkeuring staat aan ([handover] single_approval)"
                 if s.handover.single_approval else ", niet dezelfde persoon (vier ogen)"))
    handed = [PURPOSES[c].nl for c in PURPOSES if c not in handover.NOT_HANDED_OVER]
    rows = [("Politie en Openbaar Ministerie",
             f"bij een vordering of vrijwillige verstrekking, met een overdrachtsformulier, {approval}; voor "
             f"{_list(handed)}; tot nu toe {approved} overdracht(en) goedgekeurd")]
    if f.enrolled:
        rows.append(("Centraal archief van de gemeente",
                     f"{f.enrolled['url']} (archief {f.enrolled['archive_id']}): versleuteld, opnames met een "
                     f"blokkering voor {_list([PURPOSES[c].nl for c in s.sync.central_purposes if c in PURPOSES])}"))
    else:
        rows.append(("Centraal archief", "geen: de box is niet bij een archief ingeschreven"))
    redactions = f.scalar("SELECT COUNT(*) FROM redactions")
    rows.append(("De verzoeker", f"bij inzage: een kopie waarin anderen onherkenbaar zijn gemaakt, gemaakt door de "
                                 f"{_holders(roles.RECORDINGS_REDACT)} ({redactions} onherkenbaar gemaakte kopie(ën) "
                                 f"tot nu toe)"))
    if s.syslog.server:
        rows.append(("Logverzamelaar van de gemeente", f"{s.syslog.server}: het logboek, meldingen en checkpoints "
                                                       f"(syslog over TLS), geen beelden"))
    if s.alerts.smtp_server:
        count = sum(len(getattr(s.alerts, r)) for r in ("keeper", "privacy_officer", "team_leader", "auditor"))
        rows.append(("Meldingen per e-mail", f"via {s.alerts.smtp_server} aan {count} adres(sen): meldingen over "
                                             f"de box, geen beelden"))
    places = [p for p in (f.enrolled["url"] if f.enrolled else "", s.syslog.server, s.alerts.smtp_server) if p]
    rows.append(("Doorgifte buiten de EER", "de box verbindt alleen met de bestemmingen hierboven die in kluis.toml "
                                            f"zijn ingesteld ({_list(places)}); of een daarvan buiten de EER ligt, "
                                            f"stelt de gemeente vast"))
    return Part("Ontvangers en doorgifte", rows=rows)


def retention_part(f: Facts) -> Part:
    r, a = f.settings.retention, f.settings.audit
    rows = [("Opnames", f"{_days(r.default_days)} na het einde van de opname; daarna verwijdert de box ze "
                        f"automatisch (elke {r.sweep_minutes:g} minuten gecontroleerd)")]
    for category, days in sorted(r.categories.items()):
        rows.append((f"Categorie {category}", _days(days)))
    rows += [
        ("Blokkering", f"een opname met een blokkering (voor een doel en zaaknummer) blijft tot die wordt "
                       f"opgeheven; elke {_days(r.review_days)} beoordeeld; daarna nog minstens "
                       f"{_days(r.grace_days)}"),
        ("Logboek", f"{_days(a.term_days)}; regels over een opname die nog bewaard wordt blijven zolang die "
                    f"opname er is"),
        ("Verwijderverslag", "zonder beelden: opname-id, hash, tijden, grootte, categorie en termijn; de box "
                             "verwijdert het niet"),
        ("Verzoeken van betrokkenen", "de box verwijdert ze niet automatisch"),
        ("Back-ups", "bevatten alleen opnames binnen hun termijn; een herstelde box verwijdert wat sindsdien is "
                     "verlopen"),
    ]
    return Part("Bewaartermijnen", rows=rows)


def security_part(f: Facts) -> Part:
    s, box = f.settings, f.box
    required = [r for r in roles.ROLES if r in s.security.totp_required]
    if required:
        totp = "verplicht voor " + _list([ROLE_NL[r] for r in required]) + "; ingesteld door " + _list(
            [f"{f.totp_by_role.get(r, 0)} van {f.users_by_role.get(r, 0)} {ROLE_NL[r]}" for r in required])
    else:
        totp = "voor geen enkele rol verplicht ([security] totp_required is leeg)"
    any_totp = sum(f.totp_by_role.values())
    if not required and any_totp:
        totp += f"; {any_totp} gebruiker(s) gebruiken er vrijwillig een"
    context = tls.server_context(box.data_dir, s.box.name)
    tls_version = str(context.minimum_version.name).replace("TLSv1_", "TLS 1.").replace("TLSv", "TLS ")
    last = backup_status.last_backup(box)
    seen = witness.latest(box.catalog) if f.enrolled else None
    items = [
        "Opnames versleuteld opgeslagen: elke opname met een eigen sleutel, verzegeld voor de publieke sleutel van "
        "de box (X25519, sealed box); onversleutelde beelden komen niet op de schijf van de box.",
        f"De privésleutel van de box opent alleen met het wachtwoord van een gebruiker met een sleutelslot "
        f"({f.slots} slot(en), Argon2id, profiel {s.security.kdf_profile}) of met de herstelsleutel "
        f"(noodtoegang, vastgelegd in het logboek).",
        f"Webinterface alleen via HTTPS, {tls_version} of hoger, met het eigen certificaat van de box "
        f"(vingerafdruk {tls.fingerprint(box.data_dir)}).",
        f"Tweede factor (TOTP): {totp}.",
        f"Na {users.MAX_FAILURES} verkeerde wachtwoorden is een account {users.LOCK_MINUTES} minuten geblokkeerd; "
        f"een sessie eindigt na {s.web.idle_minutes} minuten zonder activiteit.",
        "Rollen bepalen wie wat mag (tabel hieronder); elke weergave, export, blokkering en verwijdering noemt een "
        "doel en staat eerst in het logboek.",
        f"Logboek met hashketen, elke regel ondertekend (Ed25519), elke {s.audit.checkpoint_minutes:g} minuten een "
        f"ondertekend checkpoint"
        + (f"; het archief bevestigt de checkpoints (laatst: regel {seen['count']}, {_local(seen['witnessed_at'], f.tz)})"
           if seen else "; niet bevestigd door een archief (de box is niet ingeschreven)" if not f.enrolled else
           "; het archief heeft nog geen checkpoint bevestigd")
        + (f"; doorgestuurd naar {s.syslog.server}" if s.syslog.server else "; niet doorgestuurd naar een logverzamelaar")
        + ".",
        "Verwijderen door de sleutel van de opname te vernietigen (overschreven), daarna het bestand.",
        ("Laatste back-up: " + (f"{_local(to_iso(last.at), f.tz)} naar {last.target}, versleuteld voor de sleutel "
                                f"van de box" if last else "nog geen back-up gemaakt") + "."),
        ("De ondertekeningssleutel is verzegeld aan de TPM2 van deze machine." if box.signing_key_sealed() else
         "De ondertekeningssleutel is niet aan een TPM2 verzegeld: hij staat op de schijf van de box."),
        ("Overdrachten: enkelvoudige goedkeuring staat aan." if s.handover.single_approval else
         "Overdrachten: vier ogen (een tweede persoon keurt goed)."),
    ]
    return Part("Beveiligingsmaatregelen", items=items, table=roles_table(f))


def roles_table(f: Facts) -> tuple[list[str], list[list[str]]]:
    rows = []
    for role in roles.ROLES:
        allowed = sorted(PERMISSION_NL.get(p, p) for p in roles.PERMISSIONS[role] if p != roles.OVERVIEW)
        purposes = roles.VIEW_PURPOSES.get(role)
        view = ("—" if not roles.allowed(role, roles.RECORDINGS_VIEW) else
                "alle doelen" if purposes is None else _list([PURPOSES[p].nl for p in sorted(purposes)]))
        rows.append([ROLE_NL[role], str(f.users_by_role.get(role, 0)), SCOPE_NL[roles.SCOPES.get(role)], view,
                     "ja" if role in f.settings.security.totp_required else "nee", _list(allowed)])
    return ["Rol", "Gebruikers", "Ziet", "Bekijkt beelden voor", "Tweede factor verplicht", "Mag"], rows


# The documents --------------------------------------------------------------------------------------

def processing_register(box: Box) -> Document:
    """The entry in the register of processing activities (AVG art. 30(1))."""
    f = facts(box)
    return Document("register", "Verwerkingsregister: bodycams handhaving",
                    f"Vermelding in het register van verwerkingsactiviteiten (AVG artikel 30), {f.settings.box.name}",
                    _local(to_iso(box.clock()), f.tz),
                    [controller_part(f), purposes_part(f), subjects_part(f), recipients_part(f), retention_part(f),
                     security_part(f)])


def dpia_facts(box: Box) -> Document:
    """The facts a DPIA of the bodycams needs, as this box has them, and what needs a decision."""
    f = facts(box)
    return Document("dpia", "Feitenblad voor de DPIA: bodycams handhaving",
                    f"Feiten uit de box {f.settings.box.name}, ten behoeve van de gegevensbeschermingseffectbeoordeling",
                    _local(to_iso(box.clock()), f.tz),
                    [scale_part(f), controller_part(f), purposes_part(f), flows_part(f), recipients_part(f),
                     retention_part(f), security_part(f), attention_part(f)])


def flows_part(f: Facts) -> Part:
    """How footage reaches the box, as this box is set up."""
    s = f.settings
    paired = f.scalar("SELECT COUNT(*) FROM devices WHERE paired = 1")
    rows = [("Dockingstation", f"{paired} gekoppelde camera('s); de box haalt de opnames op via het netwerk "
                               f"(mDNS op {_list(s.dock.interfaces, 'alle netwerkaansluitingen')}), controleert de "
                               f"handtekening van de camera en de hash, en pas dan wist de camera ze"),
            ("Axis-systeem", f"content destination op {s.axis.listen}" if s.axis.listen else "uit ([axis] listen)"),
            ("USB-camera's", f"tot {s.usb.concurrency} tegelijk uitgelezen, alleen van geregistreerde camera's"),
            ("Handmatige import", "door de beheerder (kluis import), voor camera's met alleen USB-opslag")]
    return Part("Gegevensstromen naar de box", rows=rows)


def scale_part(f: Facts) -> Part:
    now = f.box.clock()
    year_ago = to_iso(now - timedelta(days=365))
    views = f.box.catalog.db.execute(
        "SELECT purpose, COUNT(*) FROM audit_log WHERE action = 'view' AND time >= ? GROUP BY purpose ORDER BY purpose",
        [year_ago]).fetchall()
    kinds = dict(f.box.catalog.db.execute("SELECT kind, COUNT(*) FROM requests GROUP BY kind").fetchall())
    sources = f.box.catalog.db.execute("SELECT source, COUNT(*) FROM recordings GROUP BY source ORDER BY source").fetchall()
    first = f.box.catalog.db.execute("SELECT MIN(time) FROM audit_log").fetchone()[0]
    pruned = audit_prunes.stored(f.box.catalog)
    rows = [
        ("Camera's gekoppeld", str(f.scalar("SELECT COUNT(*) FROM devices WHERE paired = 1"))),
        ("Gebruikers", _list([f"{n} {ROLE_NL[r]}" for r, n in f.users_by_role.items() if n])),
        ("Opnames nu bewaard", str(f.scalar("SELECT COUNT(*) FROM recordings WHERE state = 'stored'"))),
        ("Waarvan met blokkering", str(f.scalar("SELECT COUNT(DISTINCT recording_id) FROM holds "
                                                "WHERE released_at IS NULL"))),
        ("Binnengekomen via", _list([f"{SOURCE_NL.get(src, src or 'onbekend')} {n}" for src, n in sources],
                                    "nog geen opnames")),
        ("Verwijderd sinds de start", str(f.scalar("SELECT COUNT(*) FROM deletions"))),
        ("Bekeken in de laatste 12 maanden", _list([f"{PURPOSES[p].nl if p in PURPOSES else p or '?'} {n}"
                                                    for p, n in views], "geen")),
        ("Overdrachten goedgekeurd", str(f.scalar("SELECT COUNT(*) FROM handovers WHERE state = ?",
                                                  [handover.APPROVED]))),
        ("Verzoeken van betrokkenen", _list([f"{PURPOSES[k].nl if k in PURPOSES else k} {n}"
                                             for k, n in sorted(kinds.items())], "geen")),
        ("Logboek", (f"vanaf {_local(first, f.tz)}" if first else "nog geen regels")
         + (f"; oudere regels opgeschoond onder {len(pruned)} ondertekend(e) checkpoint(s), regels 1 tot en met "
            f"{pruned[-1].get('last')}" if pruned else "")),
    ]
    return Part(f"De verwerking in cijfers (stand {_local(to_iso(now), f.tz)})", rows=rows)


def attention_part(f: Facts) -> Part:
    """What the box's own facts say needs a decision or a look: each item from a setting or a count."""
    s, items = f.settings, []
    for key in ("controller", "dpo", "legal_basis"):
        if not getattr(s.privacy, key) and not (key == "controller" and s.box.municipality):
            items.append(f"[privacy] {key} is niet ingesteld.")
    viewers = [r for r in roles.ROLES if roles.allowed(r, roles.RECORDINGS_VIEW) and f.users_by_role.get(r)]
    lax = [ROLE_NL[r] for r in viewers if r not in s.security.totp_required]
    if lax:
        items.append(f"Rollen die beelden bekijken zonder verplichte tweede factor: {_list(lax)}.")
    for role in s.security.totp_required:
        missing = f.users_by_role.get(role, 0) - f.totp_by_role.get(role, 0)
        if missing > 0:
            items.append(f"{missing} {ROLE_NL[role]} heeft/hebben de verplichte tweede factor nog niet ingesteld.")
    if s.handover.single_approval:
        items.append("Overdrachten mogen door één persoon worden goedgekeurd ([handover] single_approval).")
    if not f.enrolled:
        items.append("Geen archief bevestigt de checkpoints van het logboek: wie de schijf en de sleutel heeft, "
                     "kan het logboek herschrijven zonder dat de box het merkt.")
    last = backup_status.last_backup(f.box)
    overdue = s.alerts.backup_overdue_days
    if last is None:
        items.append("Er is nog geen back-up gemaakt.")
    elif overdue and f.box.clock() - last.at > timedelta(days=overdue):
        items.append(f"De laatste back-up is ouder dan {_days(overdue)}.")
    if not f.box.signing_key_sealed():
        items.append("De ondertekeningssleutel is niet aan een TPM2 verzegeld.")
    review = f.scalar("SELECT COUNT(*) FROM holds WHERE released_at IS NULL AND review_at <= ?",
                      [to_iso(f.box.clock())])
    if review:
        items.append(f"{review} blokkering(en) wachten op beoordeling.")
    longer = [f"{c} ({_days(d)})" for c, d in sorted(s.retention.categories.items()) if d > s.retention.default_days]
    if longer:
        items.append(f"Categorieën met een langere termijn dan {_days(s.retention.default_days)}: {_list(longer)}; "
                     f"onderbouw waarom.")
    items.append("Verzoeken van betrokkenen hebben in de box geen bewaartermijn.")
    return Part("Aandachtspunten", items=items,
                note="Elk punt volgt uit een instelling of een telling in de box; de beoordeling is aan de gemeente.")
