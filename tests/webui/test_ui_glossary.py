"""One Dutch word per idea (docs/ui-glossary.md): no rejected word in any Dutch catalog, and every rejected
word is recorded in the glossary, so that the next translator finds the choice."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from webui import i18n

GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "ui-glossary.md"

# rejected word as the glossary writes it -> the pattern that finds it in a Dutch message
REJECTED = {
    "blurren": r"\bblurren\b",
    "geblurd": r"\bgeblurd\b",
    "geblurde": r"\bgeblurde\b",
    "vervaagde versie": r"\bvervaagde versies?\b",
    "wachtzin": r"\bwachtzin(nen)?\b",
    "blokkering": r"\bblokkering(en)?\b",
    "geblokkeerde opname": r"\bgeblokkeerde opnames?\b|\bopnames? die niet geblokkeerd\b",
    "dossiernummer": r"\bdossiernummers?\b",
    "sync": r"(?<!kluis )\bsync\b",  # the command `kluis sync enroll` is a command, not a word
    "discovered": r"\bdiscovered\b",
    "idle": r"\bidle\b",
    "toestand": r"\btoestand\b",
    "uitlezen": r"\buit(ge)?lez(en|ing)\b",
}


def dutch_messages() -> list[tuple[str, str, str]]:
    """(file, id, Dutch text) of every translated message, each plural form on its own."""
    found = []
    for po in i18n.catalog_files("nl"):
        with po.open("rb") as f:
            for message in read_po(f, locale="nl"):
                if not message.id:
                    continue
                msgid = message.id[0] if isinstance(message.id, tuple) else message.id
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                found += [(po.name, msgid, text) for text in strings if text]
    return found


def test_no_rejected_word_in_any_dutch_catalog():
    messages = dutch_messages()
    assert len(messages) > 300  # every catalog was read
    hits = [(file, word, text) for file, _msgid, text in messages for word, pattern in REJECTED.items()
            if re.search(pattern, text, re.IGNORECASE)]
    assert not hits, f"rejected words (docs/ui-glossary.md) in the Dutch catalogs: {hits}"


def test_the_check_finds_a_rejected_word():
    """The patterns match what they reject (a test that cannot fail proves nothing)."""
    assert re.search(REJECTED["geblurd"], "iedereen behalve zichzelf geblurd", re.IGNORECASE)
    assert re.search(REJECTED["wachtzin"], "met een wachtzin beveiligd", re.IGNORECASE)
    assert re.search(REJECTED["sync"], "Sync-venster", re.IGNORECASE)
    assert not re.search(REJECTED["sync"], "(kluis sync enroll)", re.IGNORECASE)
    assert not re.search(REJECTED["wachtzin"], "met een wachtwoordzin beveiligd", re.IGNORECASE)


def test_every_rejected_word_is_recorded_in_the_glossary():
    text = GLOSSARY.read_text(encoding="utf-8")
    rejected_column = " ".join(line.split("|")[3] for line in text.splitlines()
                               if line.startswith("|") and line.count("|") >= 5)
    missing = [word for word in REJECTED if word not in rejected_column]
    assert not missing, f"record these rejected words in docs/ui-glossary.md: {missing}"


def test_chosen_words_are_used():
    texts = " ".join(text for _f, _i, text in dutch_messages())
    for word in ("vervaagd", "wachtwoordzin", "geredigeerde kopie", "bewaard", "bewaring"):
        assert word in texts, word
