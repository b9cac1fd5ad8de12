"""Translations: gettext catalogs in webui/locale/<lang>/LC_MESSAGES/kluis.po, compiled when first used.

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
]


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang not in LANGUAGES or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out, as msgfmt does
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT


def extract() -> dict[str, list[str]]:
    """Every message id in the web UI's code and templates -> where it is used."""
    from babel.messages.extract import extract_from_dir

    root = Path(__file__).parent
    found: dict[str, list[str]] = {}
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    for filename, lineno, message, _comments, _context in extract_from_dir(root, method_map):
        if isinstance(message, tuple):  # ngettext: (singular, plural)
            message = message[0]
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def update_catalogs() -> None:
    """`python -m webui.i18n`: add new ids to every catalog (empty, to translate), drop unused ones."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    ids = extract()
    for lang in LANGUAGES:
        if lang == "en":
            continue  # the ids are English
        po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        old = read_po(po.open("rb"), locale=lang) if po.exists() else Catalog(locale=lang)
        new = Catalog(locale=lang, project="Kluis", domain=DOMAIN)
        for msgid, places in sorted(ids.items()):
            previous = old.get(msgid)
            new.add(msgid, previous.string if previous else "",
                    locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places])
        po.parent.mkdir(parents=True, exist_ok=True)
        with po.open("wb") as f:
            write_po(f, new, width=120, omit_header=False)
        missing = [m for m in ids if not new.get(m).string]
        print(f"{po}: {len(ids)} messages, {len(missing)} untranslated")


if __name__ == "__main__":
    update_catalogs()
