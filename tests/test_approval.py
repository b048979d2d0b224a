"""Approval before a send (issue 21): the send permission, the second-approver rule, an
edition approved ahead of its slot, and the daemon holding an unapproved edition until it
is approved (then sending it once). Both databases (the `store` fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from publisher.config import PublisherConfig
from publisher.deliver import approval
from publisher.pipeline import compose_campaign, run_campaign_slot
from publisher.schedule.daemon import make_daemon
from publisher.schedule.steering import preview_edition
from publisher.store import Store, approvals, audit
from publisher.store import schedule_state as state
from publisher.store.curation import Choices, change_curation, get_curation
from publisher.store.editions import list_editions
from publisher.store.staff import Staff, add_staff
from tests.conftest import FIXED_NOW, present
from tests.servers.data import add_posts, add_subscribers

PASSWORD = "correct horse battery staple"
NOW = FIXED_NOW
CAMPAIGN = """
campaigns:
  - name: weekly
    title: The Weekly
    subject: "The Weekly #{{{{ edition.number }}}}"
    cadence: 'daily: 09:00'
    sections:
      - {{name: posts, kinds: [article], max: 5, title: Posts}}
delivery:
  backend: file
approval:
  broadcasts: {broadcasts}
  editions: {editions}
"""


def config_with(make_config, *, editions: bool = True, broadcasts: bool = False):
    return make_config(
        CAMPAIGN.format(editions=str(editions).lower(), broadcasts=str(broadcasts).lower())
    )


def staff(store: Store, email: str, role: str) -> Staff:
    return add_staff(store, email, role, PASSWORD, now=NOW)


def actions(store: Store) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in reversed(audit.recent(store))]


def next_version(config: PublisherConfig, store: Store, now: datetime) -> approval.Version:
    """What the campaign page fingerprints: the next edition's preview."""
    edition, rendered = present(preview_edition(config, store, "weekly", now=now))
    editor = get_curation(store, "weekly").changed_by
    return approval.edition_version(edition, rendered.subject, editor=editor)


# --- the send permission --------------------------------------------------------------------


def test_owners_send_editors_once_granted_viewers_never(store):
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    viewer = staff(store, "vi@example.org", "viewer")
    assert approval.may_send(store, owner) and not approval.may_send(store, editor)
    with pytest.raises(approval.MayNotSend, match="an owner can grant"):
        approval.require_may_send(store, editor)
    assert approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    assert not approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    approval.require_may_send(store, editor)
    with pytest.raises(approval.PermissionRefused, match="viewers may not send"):
        approval.set_send_permission(store, viewer, True, by=owner.email, now=NOW, ip=None)
    with pytest.raises(approval.PermissionRefused, match="owners always may send"):
        approval.set_send_permission(store, owner, False, by=owner.email, now=NOW, ip=None)
    assert approval.set_send_permission(store, editor, False, by=owner.email, now=NOW, ip=None)
    assert not approval.may_send(store, editor) and not approval.may_send(store, viewer)
    assert actions(store) == [
        ("olga@example.org", "send permission granted"),
        ("olga@example.org", "send permission taken"),
    ]


# --- the rule -------------------------------------------------------------------------------


def test_rule_off_sends_as_before(store, make_config):
    config = config_with(make_config, editions=False)
    add_subscribers(store, NOW, 2)
    add_posts(store, NOW)
    record = present(compose_campaign(config, store, "weekly", now=NOW))
    approval.require_approved(config, store, "edition", record.id)  # no-op
    slot = NOW.replace(hour=9) + timedelta(days=1)
    add_posts(store, slot, count=1)
    outcome = run_campaign_slot(config, store, "weekly", slot, now=slot)
    assert outcome.status == "sent"


def test_self_approval_and_approval_without_the_permission_are_refused(store):
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    other = staff(store, "otto@example.org", "owner")
    version = approval.Version("broadcast", "7", "v1", "Vote tomorrow", editor="ed@example.org")
    asked = approval.ask(store, version, editor, now=NOW, ip="192.0.2.1")
    assert asked.status == "waiting" and asked.requested_by == "ed@example.org"
    assert [a.label for a in approvals.waiting_approvals(store)] == ["Vote tomorrow"]
    with pytest.raises(approval.MayNotSend):  # the asker has no permission either
        approval.approve(store, version, editor, now=NOW, ip=None)
    approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    with pytest.raises(approval.SelfApproval):  # asked, and edited it last
        approval.approve(store, version, editor, now=NOW, ip=None)
    # the last editor may not approve even when someone else asked
    by_owner = approval.Version("broadcast", "8", "v1", "Rally", editor="olga@example.org")
    approval.ask(store, by_owner, editor, now=NOW, ip=None)
    with pytest.raises(approval.SelfApproval):
        approval.approve(store, by_owner, owner, now=NOW, ip=None)
    approved = approval.approve(store, version, other, now=NOW, ip=None)
    assert (approved.status, approved.decided_by) == ("approved", "otto@example.org")
    assert [a.label for a in approvals.waiting_approvals(store)] == ["Rally"]
    assert [a for _, a in actions(store) if a.startswith("approv")] == [
        "approval asked",
        "approval not allowed",
        "approval not allowed",
        "approval asked",
        "approval not allowed",
        "approved",
    ]


def test_a_change_after_approval_voids_it(store):
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    first = approval.Version("broadcast", "7", "v1", "Vote tomorrow", editor=editor.email)
    approval.ask(store, first, editor, now=NOW, ip=None)
    approval.approve(store, first, owner, now=NOW, ip=None)
    assert present(approval.settle(store, first, now=NOW)).status == "approved"
    edited = approval.Version("broadcast", "7", "v2", "Vote tomorrow", editor=editor.email)
    assert approval.settle(store, edited, now=NOW) is None  # nobody asked about this version
    assert present(approvals.find_approval(store, "broadcast", "7", "v1")).status == "voided"
    assert ("publisher", "approval voided") in actions(store)
    refused = approval.refuse(store, edited, owner, now=NOW, ip=None, reason="wrong date")
    assert (refused.status, refused.reason) == ("refused", "wrong date")
    assert ("olga@example.org", "approval refused") in actions(store)


def test_an_edition_approved_ahead_goes_and_a_changed_one_does_not(store, make_config):
    """The campaign page approves the preview of the next edition; the edition composed at
    the slot carries the same fingerprint, unless something changed it."""
    config = config_with(make_config)
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    add_posts(store, NOW)
    change_curation(
        store, "weekly", lambda c: Choices(note="Rally on Friday"), by=editor.email, now=NOW
    )
    ahead = next_version(config, store, NOW)
    assert ahead.editor == editor.email and ahead.label == "weekly #1"
    with pytest.raises(approval.SelfApproval):
        approval.approve(store, ahead, editor, now=NOW, ip=None)
    approval.approve(store, ahead, owner, now=NOW, ip=None)
    # an editor changes the note after the approval: the slot composes another version
    change_curation(store, "weekly", lambda c: Choices(note="Changed"), by=editor.email, now=NOW)
    changed = next_version(config, store, NOW)
    assert changed.version != ahead.version
    record = present(compose_campaign(config, store, "weekly", now=NOW + timedelta(hours=1)))
    stored = present(approval.stored_edition_version(store, record.id))
    assert stored == changed  # the preview's fingerprint is the stored edition's
    with pytest.raises(approval.NotApproved, match="weekly #1 waits for approval"):
        approval.require_approved(config, store, "edition", record.id, now=NOW)
    # the slot's check voided the approval of the version before the change, audited
    assert (
        present(approvals.find_approval(store, "edition", "weekly", ahead.version)).status
        == "voided"
    )
    assert ("publisher", "approval voided") in actions(store)
    approval.approve(store, stored, owner, now=NOW, ip=None)
    approval.require_approved(config, store, "edition", record.id)


def test_the_daemon_holds_an_unapproved_edition_then_sends_it_once(store, make_config, project):
    config = config_with(make_config)
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    add_subscribers(store, NOW, 3)
    slot = datetime(2026, 11, 26, 14, 0, tzinfo=NOW.tzinfo)  # daily 09:00 New York
    add_posts(store, slot - timedelta(hours=2))
    clock = slot + timedelta(seconds=5)
    daemon = make_daemon(config, store, clock=lambda: clock)
    said = daemon.dispatch("weekly", slot, clock)
    assert said.startswith("held weekly #1 waits for approval"), said
    record = present(state.get_slot(store, "weekly", slot))
    assert record.status == "held" and record.edition_id is not None
    assert [(e.number, e.status) for e in list_editions(store, "weekly")] == [(1, "composed")]
    outbox = project / "outbox" / "weekly" / "1"
    assert not list(outbox.glob("*.eml"))
    assert daemon.release_approved(clock) == []  # nothing approved: still held
    version = present(approval.stored_edition_version(store, record.edition_id))
    approval.approve(store, version, editor, now=clock, ip=None)
    clock = slot + timedelta(minutes=3)
    [ran] = daemon.release_approved(clock)
    assert ran.startswith("sent weekly #1: 3 sent"), ran
    assert len(list(outbox.glob("*.eml"))) == 3
    assert present(state.get_slot(store, "weekly", slot)).status == "sent"
    assert daemon.release_approved(clock + timedelta(minutes=1)) == []  # once
    assert daemon.dispatch("weekly", slot, clock).startswith("already taken")
    assert len(list(outbox.glob("*.eml"))) == 3


def test_a_held_slot_past_its_grace_is_left_to_staff(store, make_config):
    config = config_with(make_config)
    owner = staff(store, "olga@example.org", "owner")
    add_subscribers(store, NOW, 1)
    slot = datetime(2026, 11, 26, 14, 0, tzinfo=NOW.tzinfo)
    add_posts(store, slot - timedelta(hours=2))
    daemon = make_daemon(config, store, clock=lambda: slot)
    assert daemon.dispatch("weekly", slot, slot).startswith("held")
    edition_id = present(present(state.get_slot(store, "weekly", slot)).edition_id)
    approval.approve(
        store, present(approval.stored_edition_version(store, edition_id)), owner, now=slot, ip=None
    )
    late = slot + config.campaign("weekly").grace + timedelta(minutes=1)
    assert daemon.release_approved(late) == []
    assert present(state.get_slot(store, "weekly", slot)).status == "held"


def test_a_broadcast_is_approved_for_its_draft_and_an_edit_voids_it(store, make_config):
    """The rule holds a broadcast until a second staff member approves its draft; an edit
    voids the approval."""
    from publisher.store import broadcasts

    config = config_with(make_config, editions=False, broadcasts=True)
    owner, editor = (
        staff(store, "olga@example.org", "owner"),
        staff(store, "ed@example.org", "editor"),
    )
    draft = broadcasts.BroadcastDraft(
        name="Vote tomorrow", subject="Vote tomorrow", preheader="", sender="organisation",
        audience=broadcasts.Audience(("labor",)), body="Come to the council.",
    )  # fmt: skip
    made = broadcasts.create_broadcast(store, draft, by=editor.email, now=NOW)
    with pytest.raises(approval.NotApproved, match="Vote tomorrow waits for approval"):
        approval.require_approved(config, store, "broadcast", made.id)
    first = present(approval.broadcast_version(store, made.id))
    approval.ask(store, first, editor, now=NOW, ip=None)
    with pytest.raises(approval.SelfApproval):
        approval.approve(store, first, _granted(store, owner, editor), now=NOW, ip=None)
    approval.approve(store, first, owner, now=NOW, ip=None)
    approval.require_approved(config, store, "broadcast", made.id)
    # scheduling is not an edit: the approval holds
    broadcasts.schedule_broadcast(
        store, made.id, NOW + timedelta(days=1), version=made.version, by=editor.email, now=NOW
    )
    approval.require_approved(config, store, "broadcast", made.id)
    current = present(broadcasts.get_broadcast(store, made.id))
    edited = broadcasts.BroadcastDraft(**{**draft.__dict__, "body": "Come at 6pm."})
    broadcasts.update_broadcast(
        store, made.id, edited, version=current.version, by=owner.email, now=NOW
    )
    with pytest.raises(approval.NotApproved):
        approval.require_approved(config, store, "broadcast", made.id)
    second = present(approval.broadcast_version(store, made.id))
    assert approval.settle(store, second, now=NOW) is None
    assert (
        present(approvals.find_approval(store, "broadcast", str(made.id), first.version)).status
        == "voided"
    )


def _granted(store: Store, owner: Staff, editor: Staff) -> Staff:
    approval.set_send_permission(store, editor, True, by=owner.email, now=NOW, ip=None)
    return editor


def test_the_next_edition_leaves_the_approval_of_the_one_before_alone(store):
    owner = staff(store, "olga@example.org", "owner")
    sent = approval.Version("edition", "weekly", "v1", "weekly #1")
    approval.approve(store, sent, owner, now=NOW, ip=None)
    following = approval.Version("edition", "weekly", "v2", "weekly #2")
    assert approval.settle(store, following, now=NOW) is None
    assert present(approvals.find_approval(store, "edition", "weekly", "v1")).status == "approved"
    assert ("publisher", "approval voided") not in actions(store)


def test_an_edition_dated_by_its_subject_keeps_its_approval_until_a_later_slot(
    store, make_config, project
):
    """A subject naming the edition's date: the campaign page previews the edition for its
    next slot's date, so an approval given the day before still holds when the daemon
    composes it at the slot (the clock moved on), and a real change still needs another."""
    config = make_config(
        CAMPAIGN.format(editions="true", broadcasts="false").replace(
            "#{{ edition.number }}", "#{{ edition.number }}, {{ edition.date | date }}"
        )
    )
    owner = staff(store, "olga@example.org", "owner")
    add_subscribers(store, NOW, 2)
    add_posts(store, NOW)
    approved_at = datetime(2026, 11, 25, 20, 0, tzinfo=NOW.tzinfo)  # 15:00 in New York
    slot = datetime(2026, 11, 26, 14, 0, tzinfo=NOW.tzinfo)  # the next day, 09:00 there
    ahead = next_version(config, store, approved_at)
    edition, rendered = present(preview_edition(config, store, "weekly", now=approved_at))
    assert edition.slot == slot and rendered.subject == "The Weekly #1, 26 November 2026"
    approval.approve(store, ahead, owner, now=approved_at, ip=None)
    clock = slot + timedelta(minutes=4)  # the daemon runs the slot a little late
    said = make_daemon(config, store, clock=lambda: clock).dispatch("weekly", slot, clock)
    assert said.startswith("sent weekly #1: 2 sent"), said
