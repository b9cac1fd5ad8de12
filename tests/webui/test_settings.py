"""Instellingen: the keeper changes the retention policy, sync window and idle logout in kluis.toml
(comments kept), every change audited; bad values give clear messages and change nothing."""

from __future__ import annotations

import tomllib

from appliance import audit, config, retention
from tests.web_helpers import csrf_of


async def test_settings_are_saved_to_the_config_and_audited(web):
    await web.as_role("keeper")
    page = await (await web.client.get("/instellingen")).text()
    assert 'value="28"' in page
    form = {"csrf": csrf_of(page), "retention.default_days": "35", "retention.review_days": "90",
            "retention.grace_days": "7", "sync.archive_url": "https://archief.gemeente.example",
            "sync.window": "22:00-06:00", "sync.bandwidth_kbps": "500", "web.idle_minutes": "10"}
    response = await web.client.post("/instellingen", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/instellingen"
    assert "Instellingen opgeslagen." in await (await web.client.get("/instellingen")).text()
    text = (web.box.data_dir / config.FILENAME).read_text()
    assert "# Kluis configuration" in text, "the commented template is kept"
    saved = tomllib.loads(text)
    assert saved["retention"]["default_days"] == 35 and saved["sync"]["window"] == "22:00-06:00"
    assert saved["web"]["idle_minutes"] == 10 and saved["sync"]["bandwidth_kbps"] == 500
    assert web.box.settings.sync.window == "22:00-06:00"  # the running service sees it
    assert retention.current_policy(web.box).default_days == 35
    policy = audit.entries(web.box.catalog, action="policy_change")[-1]
    assert policy["actor"] == "admin" and policy["details"]["new"]["default_days"] == 35
    change = audit.entries(web.box.catalog, action="settings_change")[-1]
    assert change["details"]["sync.window"] == {"old": "", "new": "22:00-06:00"}
    again = await web.client.post("/instellingen", data=form, allow_redirects=False)
    assert again.headers["Location"] == "/instellingen"
    assert "Er is niets gewijzigd." in await (await web.client.get("/instellingen")).text()


async def test_bad_values_are_refused_with_a_message_and_nothing_changes(web):
    await web.as_role("keeper")
    before = (web.box.data_dir / config.FILENAME).read_text()
    page = await (await web.client.get("/instellingen")).text()
    for name, value in [("retention.default_days", "0"), ("retention.default_days", "veertig"),
                        ("sync.window", "avond"), ("sync.archive_url", "http://plain.example"),
                        ("web.idle_minutes", "-5"), ("sync.archive_url", "<script>x</script>")]:
        response = await web.client.post("/instellingen", data={"csrf": csrf_of(page), name: value})
        html = await response.text()
        assert response.status == 400, (name, value)
        assert "niet geldig" in html and 'aria-invalid="true"' in html and "<script>x" not in html
    assert (web.box.data_dir / config.FILENAME).read_text() == before
    assert audit.entries(web.box.catalog, action="settings_change") == []


async def test_the_page_refuses_what_kluis_toml_refuses_with_the_models_bounds(web):
    """The form is checked by appliance.config_models, the models that load kluis.toml: a value past a
    model's bound is refused, and the message names that bound."""
    from appliance.config_models import bounds

    await web.as_role("keeper")
    page = await (await web.client.get("/instellingen")).text()
    low, high = bounds("web", "idle_minutes")
    response = await web.client.post("/instellingen", data={"csrf": csrf_of(page), "web.idle_minutes": str(high + 1)})
    assert response.status == 400
    assert f"{low} tot en met {high}" in await response.text()
    response = await web.client.post("/instellingen", data={"csrf": csrf_of(page), "retention.grace_days": "366"})
    assert response.status == 400 and web.box.settings.retention.grace_days == 7
    response = await web.client.post("/instellingen", data={"csrf": csrf_of(page), "web.idle_minutes": str(high)},
                                     allow_redirects=False)
    assert response.status == 303 and config.load(web.box.data_dir).web.idle_minutes == high


async def test_the_forms_number_bounds_are_the_models(web):
    await web.as_role("keeper")
    page = await (await web.client.get("/instellingen")).text()
    assert 'name="web.idle_minutes" type="number" value="15" min="1" max="480"' in page
    assert 'name="retention.grace_days" type="number" value="7" min="0" max="365"' in page
