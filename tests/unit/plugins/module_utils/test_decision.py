# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One shape for every action: decide() returns a Decision and sends nothing; act() alone acts on it;
"already in the state the action leads to" is an TargetActionSpec entry; time is one injected Deadline."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.cache_flush import FlushTask
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import (
    TARGET_ACTIONS,
    TargetActionSpec,
    TargetAction,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.target import FLUSHING, READY, SUSPENDED
from ansible_collections.azure_hpc.cache.tests.unit.fakes import OP, REF, FakeClock, FakeRaw, cache

TARGET = TargetRef(REF, "filer-01")


def cache_body(state):
    return {"name": "c1", "properties": {"health": {"state": state, "statusDescription": "d"}}}


def target_body(state):
    return {"name": "filer-01", "properties": {"state": state}}


def no_requests(method, url):
    raise AssertionError("decide() sent %s %s" % (method, url))


def flush_task(make_client, clock, script=no_requests, check_mode=False, allowed_states=()):
    client, session = make_client(script)
    return FlushTask(CacheOperations(client, "v"), REF, options=ActionOptions(wait=True, poll_interval=5, check_mode=check_mode),
                     deadline=Deadline.after(3600, clock=clock, sleep=clock.sleep),
                     allowed_states=allowed_states), session


def target_action(make_client, clock, action, script=no_requests, check_mode=False, force=False):
    client, session = make_client(script)
    return TargetAction(CacheOperations(client, "v"), TARGET, action,
                        options=ActionOptions(wait=True, poll_interval=5, check_mode=check_mode),
                        deadline=Deadline.after(3600, clock=clock, sleep=clock.sleep), force=force), session


# The Decision value ------------------------------------------------------------------------------
def test_each_decision_kind():
    assert Decision.attach() == Decision("attach")
    assert Decision.send() == Decision("send")
    assert Decision.skip("stopped") == Decision("skip", "stopped", "Skipped")
    assert Decision.skip("already", status="Succeeded").status == "Succeeded"
    assert Decision.refuse("no") == Decision("refuse", "no", "Refused")
    assert Decision.check("would") == Decision("check", "would", "Succeeded")


# FlushTask.decide: a decision, no request, no change to the result ----------------------------------
@pytest.mark.parametrize("state, check_mode, allowed, kind, status", [
    ("Flushing", False, (), "attach", None),
    ("flushing", True, ("Healthy",), "attach", None),  # attaching comes before refusing and check mode
    ("Stopped", False, ("Healthy",), "skip", "Skipped"),
    ("stopping", True, (), "skip", "Skipped"),
    ("Degraded", False, ("Healthy",), "refuse", "Refused"),
    ("Healthy", True, (), "check", "Succeeded"),
    ("Healthy", False, (" healthy ",), "send", None),
    ("Upgrading", False, (), "send", None),
])
def test_flush_decisions(make_client, clock, state, check_mode, allowed, kind, status):
    task, session = flush_task(make_client, clock, check_mode=check_mode, allowed_states=allowed)
    before = dict(task.result)
    decision = task.decide(cache_body(state), state)
    assert decision.kind == kind and session.calls == [] and task.result == before
    if status:
        assert decision.status == status and task.name in decision.msg


def test_a_refusal_names_the_health_description(make_client, clock):
    task, unused = flush_task(make_client, clock, allowed_states=("Healthy",))
    body = {"properties": {"health": {"state": "Degraded", "statusDescription": "a disk is slow"}}}
    decision = task.decide(body, "Degraded")
    assert decision.kind == "refuse" and "(a disk is slow)" in decision.msg and "allowed_states" in decision.msg


# act(): the one place a decision is acted on -------------------------------------------------------
def test_act_on_skip_sets_the_status_and_sends_nothing(make_client, clock):
    task, session = flush_task(make_client, clock)
    task.act(Decision.skip("nothing to do"), "Stopped")
    assert task.result["status"] == "Skipped" and task.result["msg"] == "nothing to do"
    assert task.result["changed"] is False and session.calls == []


def test_act_on_refuse_fails_with_status_refused(make_client, clock):
    task, session = flush_task(make_client, clock)
    with pytest.raises(HpcCacheError, match="^Refusing it$"):
        task.act(Decision.refuse("Refusing it"), "Degraded")
    assert task.result["status"] == "Refused" and task.result["changed"] is False and session.calls == []


def test_act_on_check_reports_the_change_and_sends_nothing(make_client, clock):
    task, session = flush_task(make_client, clock, check_mode=True)
    task.act(Decision.check("would flush"), "Healthy")
    assert task.result == {"changed": True, "polls": 0, "status": "Succeeded", "msg": "would flush"}
    assert session.calls == [] and task.sent is False


def test_act_on_attach_follows_without_a_request_to_act(make_client, clock):
    task, session = flush_task(make_client, clock, script=[cache("Healthy")])
    task.act(Decision.attach(), "Flushing")
    assert task.result["status"] == "Succeeded" and task.sent is False
    assert [c["method"] for c in session.calls] == ["GET"]


def test_act_on_send_posts_the_action(make_client, clock):
    script = [FakeRaw(202, None, {"Azure-AsyncOperation": OP}), FakeRaw(200, {"status": "Succeeded"}),
              cache("Healthy")]
    task, session = flush_task(make_client, clock, script=script)
    task.act(Decision.send(), "Healthy")
    assert task.sent is True and task.result["changed"] is True and task.result["status"] == "Succeeded"
    assert [c["method"] for c in session.calls] == ["POST", "GET", "GET"]


def test_run_acts_on_what_decide_returned(make_client, clock):
    script = [cache("Stopped")]
    task, session = flush_task(make_client, clock, script=script)
    result = task.run()
    assert result["status"] == "Skipped" and result["health_state"] == "Stopped" and len(session.calls) == 1


# TargetAction.decide and the TargetActionSpec table ------------------------------------------------------
def test_already_there_is_a_table_entry():
    assert {name: rule.already_when_over for name, rule in TARGET_ACTIONS.items()} == {
        "flush": False, "suspend": True, "resume": True, "dns_refresh": False}
    assert TARGET_ACTIONS["suspend"].over == {SUSPENDED} and TARGET_ACTIONS["resume"].over == {READY}
    assert {name: rule.waits_for for name, rule in TARGET_ACTIONS.items() if rule.waits_for} == {"suspend": {FLUSHING}}


@pytest.mark.parametrize("action, state, kind", [
    ("suspend", "Suspended", "skip"),
    ("suspend", " suspended", "skip"),
    ("resume", "Ready", "skip"),
    ("resume", "READY", "skip"),
    ("flush", "Ready", "send"),  # a flush is sent whatever the target reads
    ("flush", "Suspended", "send"),
    ("flush", "Flushing", "attach"),
    ("dns_refresh", "Ready", "send"),
    ("suspend", "Ready", "send"),
    ("resume", "Suspended", "send"),
])
def test_target_decisions(make_client, clock, action, state, kind):
    step, session = target_action(make_client, clock, action)
    decision = step.decide(target_body(state), state)
    assert decision.kind == kind and session.calls == [] and step.result == {"changed": False, "polls": 0}
    if kind == "skip":
        assert decision.status == "Succeeded"
        assert decision.msg == "The storage target filer-01 of cache c1 is already %s; no %s was sent" % (state, action)


def test_force_sends_what_is_already_there(make_client, clock):
    step, unused = target_action(make_client, clock, "resume", force=True)
    assert step.decide(target_body("Ready"), "Ready").kind == "send"


@pytest.mark.parametrize("action, state, kind", [
    ("resume", "Ready", "skip"),  # already there: the same answer as the real run
    ("suspend", "Ready", "check"),
    ("flush", "Flushing", "attach"),
])
def test_target_decisions_in_check_mode(make_client, clock, action, state, kind):
    step, unused = target_action(make_client, clock, action, check_mode=True)
    decision = step.decide(target_body(state), state)
    assert decision.kind == kind
    if kind == "check":
        assert decision.msg == "Check mode: the storage target filer-01 of cache c1 (Ready) would get a suspend"


def test_a_new_action_is_one_table_entry(make_client, clock, monkeypatch):
    monkeypatch.setitem(TARGET_ACTIONS, "restore_defaults", TargetActionSpec(
        "restoreDefaults", running=frozenset(), over=frozenset((READY,)), taken_when_over=False,
        already_when_over=True))
    step, unused = target_action(make_client, clock, "restore_defaults")
    assert step.resource_url().endswith("/storageTargets/filer-01?api-version=v")
    assert "/storageTargets/filer-01/restoreDefaults?" in step.resource_url(step.action_path)
    assert step.decide(target_body("Ready"), "Ready").kind == "skip"
    assert step.decide(target_body("Suspended"), "Suspended").kind == "send"


# The Deadline: the one clock of a task -------------------------------------------------------------
def test_deadline_after_left_sooner_and_pause():
    fake = FakeClock()
    deadline = Deadline.after(10, clock=fake, sleep=fake.sleep)
    assert deadline.at == 1010 and deadline.left() == 10 and deadline.now() == 1000
    assert deadline.sooner(1020) is deadline and deadline.sooner(1005).at == 1005
    assert deadline.sooner(1005).clock is fake
    assert deadline.pause(4) is True and fake.sleeps == [4]
    assert deadline.pause(7) is False and fake.sleeps == [4]  # it would pass the deadline: no sleep
    assert deadline.left() == 6


def test_a_task_waits_on_its_deadline_not_on_the_clients_clock(make_client, clock):
    mine = FakeClock()
    client = make_client([FakeRaw(204), cache("Flushing"), cache("Healthy")])[0]
    task = FlushTask(CacheOperations(client, "v"), REF, options=ActionOptions(wait=True, poll_interval=5, check_mode=False),
                     deadline=Deadline.after(3600, clock=mine, sleep=mine.sleep))
    result = task.act(Decision.send(), "Healthy")
    assert result is None and task.result["status"] == "Succeeded"
    assert mine.sleeps == [1] and clock.sleeps == []  # the first read follows at once (1 s), on the task's clock
