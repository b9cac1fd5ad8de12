"""Every user-visible string of the web UI goes through gettext, and Dutch translates every one."""

from __future__ import annotations

import re

from webui import i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_dutch_catalog_translates_every_message_with_the_same_placeholders():
    ids = i18n.extract()
    assert len(ids) > 100  # the extractor found the templates and the code
    catalog = i18n.read_catalog("nl")
    untranslated = [m for m in ids if not (catalog.get(m) and catalog.get(m).string) or catalog.get(m).fuzzy]
    assert not untranslated, f"not translated to Dutch (run python -m webui.i18n, then translate): {untranslated}"
    plurals = i18n.plurals()
    for msgid in ids:
        string = catalog.get(msgid).string
        if msgid in plurals:  # ngettext: a Dutch singular and plural, each with the placeholders of the ids
            assert isinstance(string, tuple) and len(string) == 2 and all(string), (msgid, string)
            for form in string:
                assert set(PLACEHOLDER.findall(form)) == set(PLACEHOLDER.findall(plurals[msgid])), (msgid, form)
        else:
            assert isinstance(string, str), (msgid, "a plural translation for a gettext message")
            assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(string)), msgid


def test_plurals_follow_the_count_in_dutch():
    nl = i18n.translations("nl")
    assert nl.ngettext("%(n)s handover.", "%(n)s handovers.", 1) % {"n": 1} == "1 overdracht."
    assert nl.ngettext("%(n)s handover.", "%(n)s handovers.", 2) % {"n": 2} == "2 overdrachten."
    assert nl.ngettext("%(n)s handover.", "%(n)s handovers.", 0) % {"n": 0} == "0 overdrachten."


def test_runtime_catalog_is_dutch_by_default_and_english_falls_back_to_the_ids():
    assert i18n.translations("nl").gettext("Recordings") == "Opnames"
    assert i18n.translations("en").gettext("Recordings") == "Recordings"
    assert i18n.pick("fr") == "nl" and i18n.pick("en") == "en"
