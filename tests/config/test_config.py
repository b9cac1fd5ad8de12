"""kluis.toml is checked against the models in appliance.config_models: an unknown key or a value out of
bounds is refused with one line naming the file and the key, files the current release writes still load,
and the template and docs/settings.md are generated from the same models."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from appliance import config, config_docs
from appliance.config_models import Settings

HERE = Path(__file__).parent
RELEASED = HERE / "kluis-release-0.1.toml"  # what `kluis init` of the release before typed settings wrote


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / config.FILENAME).write_text(text)
    return tmp_path


def refusal(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.load(write(tmp_path, text))
    return caught.value.problems


def test_an_unknown_key_is_refused_naming_the_key_and_the_file_with_a_suggestion(tmp_path):
    [line] = refusal(tmp_path, "[retention]\ndefault_day = 7\n")
    assert line == f"{tmp_path / 'kluis.toml'}: unknown setting [retention] default_day (did you mean default_days?)"


def test_an_unknown_section_and_a_key_far_from_any_are_refused(tmp_path):
    problems = refusal(tmp_path, "[retentoin]\ndefault_days = 7\n[web]\ncolour = 'blue'\n")
    assert any(p.endswith("unknown section [retentoin] (did you mean [retention]?)") for p in problems)
    assert any(p.endswith("unknown setting [web] colour") for p in problems)
    assert all("\n" not in p and "kluis.toml" in p for p in problems)


@pytest.mark.parametrize("text, expected", [
    ("[retention]\ndefault_days = 0\n", "[retention] default_days = 0: at least 1"),
    ("[retention]\ngrace_days = 1000\n", "[retention] grace_days = 1000: at most 365"),
    ("[retention.categories]\nincident = 0\n", "[retention.categories] incident = 0: at least 1"),
    ("[web]\nidle_minutes = 481\n", "[web] idle_minutes = 481: at most 480"),
    ("[storage]\nchunk_size = 1024\n", "[storage] chunk_size = 1024: at least 65536"),
    ("[dock]\nretry_s = 0\n", "[dock] retry_s = 0: more than 0"),
    ("[retention]\ndefault_days = \"28\"\n", '[retention] default_days = "28": a whole number'),
    ("[handover]\nsingle_approval = 1\n", "[handover] single_approval = 1: true or false"),
    ("[security]\nkdf_profile = \"fast\"\n", "[security] kdf_profile = \"fast\": one of 'moderate' or 'interactive'"),
    ("[sync]\nwindow = \"avond\"\n", '[sync] window = "avond": two local times like "22:00-06:00", or ""'),
    ("[sync]\narchive_url = \"http://plain.example\"\n", '[sync] archive_url = "http://plain.example": an https://'),
    ("[box]\ntimezone = \"Mars/Olympus\"\n", "[box] timezone = \"Mars/Olympus\": unknown time zone"),
])
def test_a_value_out_of_bounds_or_of_the_wrong_kind_is_refused_naming_key_and_bound(tmp_path, text, expected):
    [line] = refusal(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'kluis.toml'}: {expected}"), line


def test_a_file_that_is_not_toml_is_one_line(tmp_path):
    [line] = refusal(tmp_path, "[retention\n")
    assert "kluis.toml: not valid TOML" in line


def test_the_file_the_released_version_wrote_still_loads(tmp_path):
    settings = config.load(write(tmp_path, RELEASED.read_text()))
    assert settings.box.name == "Stadswinkel Noord" and settings.security.kdf_profile == "interactive"
    assert settings.retention == Settings().retention


def test_every_setting_the_released_template_documents_is_known_with_the_same_default(tmp_path):
    text = re.sub(r"^# (\w+ = )", r"\1", RELEASED.read_text(), flags=re.M)  # uncomment every setting
    settings = config.load(write(tmp_path, text))
    expected = Settings().as_dict()
    expected["box"]["name"], expected["security"]["kdf_profile"] = "Stadswinkel Noord", "interactive"
    expected["retention"]["categories"] = {"incident": 90}  # the template's example
    assert settings.as_dict() == expected


def test_the_generated_template_loads_to_the_defaults(tmp_path):
    text = config_docs.template()
    tables = {"retention": {"categories": {}}, "reasons": {"choices": {}}}  # [x.y] headers of empty tables
    assert tomllib.loads(text) == {name: tables.get(name, {}) for name in Settings.model_fields}, \
        "every setting commented out"
    assert config.load(write(tmp_path, text)) == Settings()


def test_settings_given_to_the_template_are_written_uncommented_in_their_own_section(tmp_path):
    given = {"security": {"kdf_profile": "interactive"}, "usb": {"concurrency": 5},
             "sync": {"interval_s": 2.5}, "retention": {"categories": {"incident": 90}}}
    config.write_template(tmp_path, given)
    settings = config.load(tmp_path)
    assert settings.usb.concurrency == 5 and settings.dock.concurrency == 3, "the same key in another section"
    assert settings.sync.interval_s == 2.5 and settings.retention.categories == {"incident": 90}
    assert settings.security.kdf_profile == "interactive"


def test_a_change_keeps_the_comments_and_refuses_what_would_not_load(tmp_path):
    config.write_template(tmp_path)
    settings = config.change(tmp_path, {"retention": {"default_days": 35}})
    text = (tmp_path / config.FILENAME).read_text()
    assert settings.retention.default_days == 35 and "# Kluis configuration" in text
    with pytest.raises(config.ConfigError, match=r"\[retention\] default_days = 0: at least 1"):
        config.change(tmp_path, {"retention": {"default_days": 0}})
    assert (tmp_path / config.FILENAME).read_text() == text


def test_docs_settings_md_is_generated_from_the_models():
    """Stale? Run: python -m appliance.config_docs"""
    assert config_docs.DOCS.read_text() == config_docs.reference()
    assert config_docs.main(["--check"]) == 0


def test_every_setting_has_a_description():
    for name, section in Settings.model_fields.items():
        assert section.description, name
        for key, field in section.annotation.model_fields.items():
            assert field.description, f"[{name}] {key}"


def test_kluis_config_check(tmp_path, kluis):
    config.write_template(tmp_path)
    ok = kluis("config", "check", "--data", tmp_path)
    assert ok.stdout.decode().strip() == f"{tmp_path / 'kluis.toml'}: OK"
    write(tmp_path, "[retention]\ndefault_day = 7\n[web]\nidle_minutes = 0\n")
    bad = kluis("config", "check", "--data", tmp_path, check=False)
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr.decode().splitlines() == [
        f"{tmp_path / 'kluis.toml'}: unknown setting [retention] default_day (did you mean default_days?)",
        f"{tmp_path / 'kluis.toml'}: [web] idle_minutes = 0: at least 1"]


def test_a_box_with_a_bad_setting_does_not_start_and_says_why(box_dir, kluis):
    data, _ = box_dir
    path = data / config.FILENAME
    path.write_text(path.read_text().replace("[audit]\n", "[audit]\ncheckpoint_minute = 5\n"))
    result = kluis("status", "--data", data, check=False)
    assert result.returncode == 1
    assert "unknown setting [audit] checkpoint_minute (did you mean checkpoint_minutes?)" in result.stderr.decode()
