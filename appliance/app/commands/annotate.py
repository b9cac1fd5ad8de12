"""kluis reason set and kluis category add|remove|list: the officer's reason for a recording and its
retention categories, as on "Mijn opnames" and the recording's page. Neither shows footage.

Who may run which: appliance/app/commands/common.py, COMMAND_PERMISSIONS (the recording in the user's scope;
an officer takes off only a category they added themselves)."""

from __future__ import annotations

import click

from appliance import recording_reasons, recordings, retention, roles
from appliance.box import Box
from appliance.clock import to_iso
from appliance.errors import KluisError
from .common import Actor, emit_json, print_table, secret_options, with_box
from .retention import act_on


@click.group("reason")
def reason_group() -> None:
    """Why a recording was made (the officer's reason, after the shift) and the warnings given first."""


@reason_group.command("set")
@with_box
@click.argument("recording_id")
@click.option("--reason", "reason", required=True, help="A reason of [reasons] choices in kluis.toml "
                                                        "(default: aggression, insult, threat, unsafe_feeling, other).")
@click.option("--text", help="A few words, for a reason that asks for them ([reasons] free_text: other).")
@click.option("--warnings", type=click.IntRange(0, recording_reasons.MAX_WARNINGS),
              help="How many warnings were given before recording (0: none).")
@secret_options
def reason_set(box: Box, recording_id: str, reason: str, text: str | None, warnings: int | None,
               user: str | None, password_file, recovery_key_file) -> None:
    """Set the reason for a recording (and the warnings given); shows no footage."""
    # a wrong reason is told before a password is asked
    recording_reasons.check(recording_reasons.current(box), reason, text, warnings)
    actor = act_on(box, "reason set", recording_id, user, password_file, recovery_key_file)
    given = recordings.set_reason(box, box.catalog.get_recording(recording_id), reason, warnings, text=text,
                                  actor=actor.name, client="cli")
    click.echo(f"{recording_id}: {given.reason}" + (f" ({given.text})" if given.text else "")
               + ("" if given.warnings is None else f", warnings {given.warnings}"))


@click.group("category")
def category_group() -> None:
    """A recording's retention categories ([retention.categories]): the longest term of them counts."""


def _known(box: Box, names: list[str]) -> None:
    """A category [retention.categories] does not name is told before a password is asked."""
    known = retention.current_policy(box).categories
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KluisError(f"unknown retention category {', '.join(unknown)} "
                         f"({', '.join(sorted(known)) or 'none configured in [retention.categories]'})")


def _change(box: Box, actor: Actor, recording_id: str, add: list[str], remove: list[str]) -> None:
    only_own = actor.user is not None and actor.user["role"] in roles.CATEGORIZE_OWN_ONLY
    after = retention.set_category(box, recording_id, actor.name, add=add, remove=remove, source="cli",
                                   only_own=only_own, client="cli")
    moment = retention.delete_after(box, recording_id)
    click.echo(f"{recording_id}: categories {', '.join(after) or 'none'}; term "
               f"{retention.current_policy(box).term_days(after)} days; "
               + (f"deleted from {to_iso(moment)}" if moment else "held"))


@category_group.command("add")
@with_box
@click.argument("recording_id")
@click.argument("category")
@secret_options
def category_add(box: Box, recording_id: str, category: str, user, password_file, recovery_key_file) -> None:
    """Put a recording in a retention category; prints its categories, term and deletion date."""
    _known(box, [category])
    actor = act_on(box, "category add", recording_id, user, password_file, recovery_key_file)
    _change(box, actor, recording_id, [category], [])


@category_group.command("remove")
@with_box
@click.argument("recording_id")
@click.argument("category")
@secret_options
def category_remove(box: Box, recording_id: str, category: str, user, password_file, recovery_key_file) -> None:
    """Take a recording out of a retention category (an officer: only one they added themselves)."""
    actor = act_on(box, "category remove", recording_id, user, password_file, recovery_key_file)
    _change(box, actor, recording_id, [], [category])


@category_group.command("list")
@with_box
@click.argument("recording_id")
@click.option("--json", "as_json", is_flag=True)
@secret_options
def category_list(box: Box, recording_id: str, as_json: bool, user, password_file, recovery_key_file) -> None:
    """A recording's categories: where each came from, who set it and when, and its term."""
    act_on(box, "category list", recording_id, user, password_file, recovery_key_file)
    policy = retention.current_policy(box)
    rows = [{**row, "term_days": policy.term_days([row["category"]])}
            for row in retention.categories_of(box.catalog, recording_id)]
    if as_json:
        emit_json(rows)
    else:
        print_table(rows, ["category", "term_days", "source", "set_by", "set_at"])


COMMANDS = [reason_group, category_group]
