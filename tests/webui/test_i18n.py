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
    for msgid in ids:
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(catalog.get(msgid).string)), msgid


def test_runtime_catalog_is_dutch_by_default_and_english_falls_back_to_the_ids():
    assert i18n.translations("nl").gettext("Recordings") == "Opnames"
    assert i18n.translations("en").gettext("Recordings") == "Recordings"
    assert i18n.pick("fr") == "nl" and i18n.pick("en") == "en"
