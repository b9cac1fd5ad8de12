"""Translations: gettext catalogs in webui/locale/<lang>/LC_MESSAGES/*.po, compiled when first used.

A language's catalog is kluis.po merged with any other .po file beside it (one per feature area, e.g.
handover.po), so that work on separate pages never edits the same file.

Message ids are English (like the code); Dutch is the default language and its catalog must translate
every id (tests/webui/test_i18n.py extracts the ids from the code and templates and checks). English
needs no catalog: gettext falls back to the id. The .po files are compiled in memory with Babel at
start-up, so no compiled .mo file is kept in git or goes stale.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kluis"
LANGUAGES = ("nl", "en")
DEFAULT = "nl"


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message


# Messages of the domain layer (appliance/users.py) that a user can cause on a form. The domain speaks
# English to logs and the CLI; the web UI looks its fixed messages up here, and shows any other as it is.
DOMAIN_MESSAGES = [
    N_("a password needs at least 10 characters"),
    N_("a user name is 1 to 64 printable characters without spaces around it"),
    N_("a team leader needs a team"),
    N_("you cannot change your own role"),
    N_("you cannot disable yourself"),
    N_("the current password is wrong"),
    N_("that code does not match: check the phone's clock and type the current code"),
    # appliance.dock.devices, appliance.retention: refusals a form can cause, said in the user's language
    N_("a shift ends after it starts"),
    N_("releasing a hold needs a reason"),
    N_("a hold needs a case reference (zaaknummer)"),
]


def catalog_files(lang: str) -> list[Path]:
    """kluis.po first, then the feature catalogs in name order."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    main = folder / f"{DOMAIN}.po"
    return ([main] if main.exists() else []) + sorted(p for p in folder.glob("*.po") if p != main)


def read_catalog(lang: str):
    """The merged catalog of one language (a message in two files: the first file wins)."""
    from babel.messages.catalog import Catalog

    merged = Catalog(locale=lang, domain=DOMAIN)
    for po in catalog_files(lang):
        with po.open("rb") as f:
            for message in read_po(f, locale=lang):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang not in LANGUAGES or not catalog_files(lang):
        return gettext.NullTranslations()
    catalog = read_catalog(lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out, as msgfmt does
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@functools.cache
def _translated_texts(lang: str) -> frozenset[str]:
    catalog = translations(lang)
    texts = getattr(catalog, "_catalog", {}).values()
    return frozenset(t for t in texts if isinstance(t, str))


def is_translation(lang: str, text: str) -> bool:
    """Is `text` one of the language's translations, as it stands (a message a handler translated)?"""
    return text in _translated_texts(lang)


def pick(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT


def _extracted():
    from babel.messages.extract import extract_from_dir

    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    return extract_from_dir(Path(__file__).parent, method_map)


def extract() -> dict[str, list[str]]:
    """Every message id in the web UI's code and templates -> where it is used (an ngettext message by
    its singular; plurals() gives its plural)."""
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in _extracted():
        if isinstance(message, tuple):  # ngettext: (singular, plural)
            message = message[0]
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def plurals() -> dict[str, str]:
    """The ngettext messages: singular id -> plural id."""
    return {message[0]: message[1] for _f, _l, message, _c, _x in _extracted() if isinstance(message, tuple)}


def update_catalogs(into: str = DOMAIN) -> None:
    """`python -m webui.i18n [NAME]`: ids in no catalog yet go into NAME.po (empty, to translate);
    every catalog keeps the ids it has that are still used, and drops the rest."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    ids = extract()
    plural = plurals()
    places = {m: [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in where] for m, where in ids.items()}
    for lang in LANGUAGES:
        if lang == "en":
            continue  # the ids are English
        folder = LOCALE_DIR / lang / "LC_MESSAGES"
        target = folder / f"{into}.po"
        # the target last: every other catalog first claims the ids it has (a target that sorts before
        # another area's file would otherwise take that area's ids and leave its file empty)
        files = [po for po in catalog_files(lang) if po != target] + [target]
        claimed: set[str] = set()
        for po in files:
            old = read_po(po.open("rb"), locale=lang) if po.exists() else Catalog(locale=lang)
            new = Catalog(locale=lang, project="Kluis", domain=DOMAIN)
            for msgid in sorted(ids):
                previous = old.get(msgid)
                if msgid in claimed or not (previous or po == target):
                    continue
                claimed.add(msgid)
                new.add((msgid, plural[msgid]) if msgid in plural else msgid,
                        previous.string if previous else ("", "") if msgid in plural else "",
                        locations=places[msgid])
            unclaimed = [m for m in ids if m not in claimed]
            if po == target:
                for msgid in sorted(unclaimed):
                    claimed.add(msgid)
                    new.add((msgid, plural[msgid]) if msgid in plural else msgid,
                            ("", "") if msgid in plural else "", locations=places[msgid])
            if not len(new) and po != folder / f"{DOMAIN}.po":
                po.unlink(missing_ok=True)
                continue
            po.parent.mkdir(parents=True, exist_ok=True)
            with po.open("wb") as f:
                write_po(f, new, width=120, omit_header=False)
            missing = [m.id for m in new if m.id and not m.string]
            print(f"{po}: {len(new)} messages, {len(missing)} untranslated")


if __name__ == "__main__":
    import sys

    update_catalogs(*sys.argv[1:2])
