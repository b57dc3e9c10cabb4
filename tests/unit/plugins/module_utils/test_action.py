# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ActionTask's own rules (docs/design.md, "An action"), through the smallest subclass there is: a widget
that reads Ready, Polishing (the action runs), Polished (it is over), Broken (refused) or Retired (nothing
to do). Read -> decide -> act; an operation followed, then the resource confirmed; a bare 2xx judged by
the resource; confirm_timeout and trust_operation; no second POST without proof; a 409 that attaches;
wait: false. A scripted session and a fake clock: no socket, no sleep."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.action import ActionTask, task_deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.decision import Decision
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.sending import (
    MAX_UNANSWERED_POSTS,
    TAKEN_READ_PAUSE,
    TAKEN_READS,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationFailed,
)
from ansible_collections.azure_hpc.cache.tests.unit.fakes import ARM, OP, SUB, FakeRaw, reset

READY, POLISHING, POLISHED, BROKEN, RETIRED = "Ready", "Polishing", "Polished", "Broken", "Retired"
WIDGET_PATH = "subscriptions/%s/resourceGroups/rg/providers/Test.Widgets/widgets/w1" % SUB
LOCATION = OP + "&monitor=true"


class Polish(ActionTask):
    """The smallest action: polish widget w1. What it says is all a subclass says; the rest is ActionTask's."""

    action = action_path = "polish"
    subject_kind = "widget"
    completion_key = "widget_state"

    @property
    def name(self):
        return "w1"

    def resource_url(self, *path):
        return ARM + WIDGET_PATH + "".join("/" + p for p in path) + "?api-version=v"

    def state_of(self, body):
        return body["properties"]["state"]

    def running(self, state):
        return state == POLISHING

    def settled(self, state):
        return state == POLISHED

    def decide(self, body, state):
        if self.running(state):
            return Decision.attach()
        if state == POLISHED:
            return Decision.skip("w1 is already polished; nothing was sent", status="Succeeded")
        if state == RETIRED:
            return Decision.skip("w1 is retired; nothing was sent")
        if state != READY:
            return Decision.refuse("Refusing to polish w1: it reads %s" % state)
        if self.check_mode:
            return Decision.check("Check mode: w1 would be polished")
        return Decision.send()


class ForcedPolish(Polish):
    """Sent whatever the widget reads: a 409 then only says another operation runs."""

    attach_on_conflict = False


class PolishTakenWhenOver(Polish):
    """A subclass whose "over" state also shows an unanswered request was taken (the hook taken())."""

    def taken(self, state):
        return self.running(state) or self.settled(state)


def widget(state):
    return FakeRaw(200, {"id": "/" + WIDGET_PATH, "name": "w1", "properties": {"state": state}})


def operation(status, error=None):
    return FakeRaw(200, dict({"status": status}, **({"error": error} if error else {})))


def conflict():
    return FakeRaw(409, {"error": {"code": "Conflict", "message": "another operation is in progress"}})


class WidgetArm:  # pylint: disable=too-few-public-methods
    """Routes: GET widget -> states in turn (the last repeats); POST polish -> posts in turn; GET of the
    Azure-AsyncOperation or Location URL -> ops in turn. ``calls`` names every request in order."""

    def __init__(self, states, posts=(), ops=()):
        self.states, self.posts, self.ops = list(states), list(posts), list(ops)
        self.calls = []

    def __call__(self, method, url):
        path = url.split("?")[0]
        if method == "POST":
            assert path == ARM + WIDGET_PATH + "/polish", path
            self.calls.append("POST polish")
            return self.posts.pop(0)
        if "ascOperations" in url:
            self.calls.append("GET location" if "monitor=true" in url else "GET operation")
            return self.ops.pop(0)
        assert method == "GET" and path == ARM + WIDGET_PATH, (method, path)
        self.calls.append("GET widget")
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return state if isinstance(state, (FakeRaw, BaseException)) else widget(state)

    def count(self, call):
        return self.calls.count(call)


def polish(make_client, clock, arm, cls=Polish, **options):
    client = make_client(arm)[0]
    values = dict({"wait": True, "poll_interval": 5, "confirm_timeout": 120}, **options)
    return cls(client, options=ActionOptions(**values), deadline=Deadline.after(3600, clock=clock, sleep=clock.sleep))


def with_operation(status=202, **headers):
    return FakeRaw(status, None, headers or {"Azure-AsyncOperation": OP, "Location": LOCATION})


# Rule 1: read first, then decide; act() does what decide() said, and only that ------------------------------
@pytest.mark.parametrize("state, check_mode, calls, status, changed", [
    (POLISHED, False, ["GET widget"], "Succeeded", False),  # skip: already what the action leads to
    (POLISHED, True, ["GET widget"], "Succeeded", False),  # check mode answers as the real run would
    (RETIRED, False, ["GET widget"], "Skipped", False),  # skip: nothing to do
    (RETIRED, True, ["GET widget"], "Skipped", False),
    (READY, True, ["GET widget"], "Succeeded", True),  # check: nothing sent, changed as the real run
])
def test_what_is_decided_before_sending_sends_nothing(make_client, clock, state, check_mode, calls, status, changed):
    arm = WidgetArm([state])
    task = polish(make_client, clock, arm, check_mode=check_mode)
    result = task.run()
    assert arm.calls == calls
    assert result["status"] == status and result["changed"] is changed and result["state"] == state
    assert task.sent is False and result["polls"] == 0 and clock.sleeps == []


def test_a_refusal_fails_after_the_read_and_sends_nothing(make_client, clock):
    arm = WidgetArm([BROKEN])
    task = polish(make_client, clock, arm)
    with pytest.raises(HpcCacheError, match="^Refusing to polish w1: it reads Broken$"):
        task.run()
    assert arm.calls == ["GET widget"]
    assert task.result["status"] == "Refused" and task.result["changed"] is False and task.sent is False
    assert "elapsed" in task.result  # run() sets it however the task ends


def test_an_action_already_running_is_attached_to_and_followed_without_a_request(make_client, clock):
    arm = WidgetArm([POLISHING, POLISHING, POLISHED])
    task = polish(make_client, clock, arm)
    result = task.run()
    assert arm.calls == ["GET widget"] * 3 and arm.count("POST polish") == 0 and task.sent is False
    assert result["status"] == "Succeeded" and result["changed"] is False and result["polls"] == 2
    assert result["msg"].startswith("The widget w1 was already polishing; no second polish was sent")
    assert result["state"] == POLISHING and result["state_after"] == POLISHED
    assert result["completion"] == {"widget_state": POLISHED}
    assert len(clock.sleeps) == 2 and max(clock.sleeps) <= 5  # a pause before each read, none over poll_interval


def test_check_mode_never_waits_for_an_action_found_running(make_client, clock):
    arm = WidgetArm([POLISHING, POLISHED])
    result = polish(make_client, clock, arm, check_mode=True).run()
    assert arm.calls == ["GET widget"] and clock.sleeps == []
    assert result["status"] == "InProgress" and "check mode does not wait" in result["msg"]


def test_send_posts_the_action_once_after_the_read(make_client, clock):
    arm = WidgetArm([READY, POLISHED], posts=[FakeRaw(204)])
    task = polish(make_client, clock, arm)
    result = task.run()
    assert arm.calls[:2] == ["GET widget", "POST polish"] and arm.count("POST polish") == 1
    assert task.sent is True and result["changed"] is True and result["status"] == "Succeeded"


def test_a_body_given_to_run_is_the_first_read(make_client, clock):
    arm = WidgetArm([READY])
    result = polish(make_client, clock, arm).run({"properties": {"state": POLISHED}})
    assert arm.calls == [] and result["status"] == "Succeeded" and result["state"] == POLISHED


# Rule 2: a 2xx with an operation header is an operation; the operation decides, the state corroborates ------
@pytest.mark.parametrize("answer", [
    with_operation(202),
    with_operation(200),
    with_operation(204),  # recorded: a 204 with Azure-AsyncOperation while the action ran on
    FakeRaw(202, None, {"azure-asyncoperation": OP, "LOCATION": LOCATION}),  # header names in any case
])
def test_an_operation_is_followed_to_succeeded_then_the_resource_confirms_it(make_client, clock, answer):
    arm = WidgetArm([READY, POLISHED], posts=[answer], ops=[operation("InProgress"), operation("Succeeded")])
    result = polish(make_client, clock, arm).run()
    assert arm.calls == ["GET widget", "POST polish", "GET operation", "GET operation", "GET widget"]
    assert result["status"] == "Succeeded" and result["changed"] is True
    assert result["status_code"] == answer.status_code and result["operation_url"] == OP  # preferred to Location
    assert result["polls"] == 2 and result["state"] == READY and result["state_after"] == POLISHED
    assert result["completion"] == {"operation_status": "Succeeded", "widget_state": POLISHED}
    assert result["msg"].startswith("The polish of w1 was accepted (HTTP %d) and has finished" % answer.status_code)


def test_a_location_alone_is_followed(make_client, clock):
    arm = WidgetArm([READY, POLISHED], posts=[with_operation(202, Location=LOCATION)],
                    ops=[FakeRaw(202, None), FakeRaw(200, None)])
    result = polish(make_client, clock, arm).run()
    assert arm.calls == ["GET widget", "POST polish", "GET location", "GET location", "GET widget"]
    assert result["operation_url"] == LOCATION and result["status"] == "Succeeded"
    assert result["completion"] == {"operation_status": "Succeeded", "widget_state": POLISHED}


def test_an_operation_that_fails_fails_the_task_with_the_services_words(make_client, clock):
    arm = WidgetArm([READY], posts=[with_operation()],
                    ops=[operation("Failed", {"code": "PolishFailed", "message": "the cloth tore"})])
    task = polish(make_client, clock, arm)
    with pytest.raises(OperationFailed, match="^The polish operation failed: PolishFailed: the cloth tore$") as caught:
        task.run()
    assert arm.calls == ["GET widget", "POST polish", "GET operation"]  # the failure is final: no read after it
    assert caught.value.result["status"] == "Failed" and caught.value.result["operation_url"] == OP


def test_after_succeeded_a_resource_that_never_shows_the_end_is_unconfirmed(make_client, clock):
    arm = WidgetArm([READY], posts=[with_operation()], ops=[operation("Succeeded")])
    task = polish(make_client, clock, arm, confirm_timeout=30)
    with pytest.raises(HpcCacheError) as caught:
        task.run()
    assert task.result["status"] == "Unconfirmed"
    assert str(caught.value) == (
        "The polish of w1 was accepted (HTTP 202): the polish operation reported Succeeded, but the widget w1 "
        "still reads Ready after 30 s (confirm_timeout); the state it leads to never showed, so the polish is "
        "not reported done (trust_operation: true accepts the operation's word)")
    assert task.result["completion"] == {"operation_status": "Succeeded", "widget_state": READY}
    assert arm.count("POST polish") == 1 and arm.count("GET operation") == 1
    # the wait after Succeeded is confirm_timeout (30 s), not wait_timeout (3600 s): one status poll (at most
    # poll_interval, 5 s), then the window
    assert 30 <= sum(clock.sleeps) <= 5 + 30


def test_trust_operation_turns_unconfirmed_into_a_warning(make_client, clock):
    arm = WidgetArm([READY], posts=[with_operation()], ops=[operation("Succeeded")])
    result = polish(make_client, clock, arm, confirm_timeout=30, trust_operation=True).run()
    assert result["status"] == "Succeeded" and result["changed"] is True
    assert len(result["warnings"]) == 1 and result["msg"] == result["warnings"][0]
    assert result["msg"].endswith("still reads Ready after 30 s (confirm_timeout); accepted on the operation's "
                                  "word (trust_operation)")
    assert result["completion"] == {"operation_status": "Succeeded", "widget_state": READY}


# Rule 3: a 2xx without an operation proves nothing: the resource decides -----------------------------------
def test_a_bare_204_is_judged_by_the_resources_state(make_client, clock):
    arm = WidgetArm([READY, POLISHING, POLISHING, POLISHED], posts=[FakeRaw(204)])
    result = polish(make_client, clock, arm).run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget", "GET widget", "GET widget"]
    assert result["status"] == "Succeeded" and result["status_code"] == 204 and "operation_url" not in result
    assert result["completion"] == {"widget_state": POLISHED}  # no operation: the resource's word only
    assert result["polls"] == 2


def test_after_a_bare_204_a_state_that_shows_the_action_running_is_waited_for_past_confirm_timeout(make_client, clock):
    arm = WidgetArm([READY] + [POLISHING] * 12 + [POLISHED], posts=[FakeRaw(204)])
    result = polish(make_client, clock, arm, confirm_timeout=10).run()
    assert result["status"] == "Succeeded" and arm.count("POST polish") == 1
    assert arm.count("GET widget") == 1 + 12 + 1 and result["polls"] == 12  # the read after the 204 is no poll
    assert sum(clock.sleeps) > 10  # waited on past confirm_timeout while it showed the action running


@pytest.mark.parametrize("trust", [False, True])
def test_after_a_bare_204_a_resource_that_never_shows_the_end_is_unconfirmed(make_client, clock, trust):
    arm = WidgetArm([READY], posts=[FakeRaw(204)])
    task = polish(make_client, clock, arm, confirm_timeout=30, trust_operation=trust)
    with pytest.raises(HpcCacheError, match="the service answered without an operation to follow, and the widget "
                                            r"w1 still reads Ready after 30 s \(confirm_timeout\)"):
        task.run()  # trust_operation trusts an operation's word only: here there was none
    assert task.result["status"] == "Unconfirmed" and "warnings" not in task.result
    assert task.result["completion"] == {"widget_state": READY}
    assert sum(clock.sleeps) == pytest.approx(30) and arm.count("POST polish") == 1


# Rule 5: no second request without proof ---------------------------------------------------------------------
def test_a_post_with_no_answer_is_read_taken_reads_times_and_sent_at_most_max_unanswered_posts(make_client, clock):
    assert (TAKEN_READS, MAX_UNANSWERED_POSTS, TAKEN_READ_PAUSE) == (3, 3, 5.0)
    arm = WidgetArm([READY], posts=[reset() for unused in range(MAX_UNANSWERED_POSTS + 1)])
    task = polish(make_client, clock, arm, poll_interval=30)
    with pytest.raises(HpcCacheError, match="^The polish request got no answer 3 times and the widget never showed "
                                            "it running: No complete answer from ARM"):
        task.run()
    assert arm.calls == ["GET widget"] + (["POST polish"] + ["GET widget"] * TAKEN_READS) * MAX_UNANSWERED_POSTS
    assert len(arm.posts) == 1  # the one answer left was never asked for
    # a few seconds between the reads after each POST (TAKEN_READ_PAUSE, not poll_interval): none before a read
    assert clock.sleeps == [TAKEN_READ_PAUSE] * ((TAKEN_READS - 1) * MAX_UNANSWERED_POSTS)


def test_an_unanswered_post_the_resource_shows_taken_is_followed_not_resent(make_client, clock):
    arm = WidgetArm([READY, READY, POLISHING, POLISHED], posts=[reset()])
    task = polish(make_client, clock, arm)
    result = task.run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget", "GET widget", "GET widget"]
    assert result["status"] == "Succeeded" and result["changed"] is True and "status_code" not in result
    assert result["msg"].startswith("The polish request of w1 got no clear answer, but the widget is polishing")


def test_taken_is_the_hook_that_judges_an_unanswered_post(make_client, clock):
    # by default only a state that shows the action running proves it was taken: Polished does not, so it is resent
    arm = WidgetArm([READY, POLISHED], posts=[reset(), FakeRaw(204)])
    assert polish(make_client, clock, arm).run()["status"] == "Succeeded"
    assert arm.count("POST polish") == 2
    # a subclass whose taken() accepts the end state sends nothing more
    arm = WidgetArm([READY, POLISHED], posts=[reset(), FakeRaw(204)])
    assert polish(make_client, clock, arm, cls=PolishTakenWhenOver).run()["status"] == "Succeeded"
    assert arm.calls == ["GET widget", "POST polish", "GET widget"]


def test_a_409_while_the_resource_shows_the_action_taken_attaches(make_client, clock):
    arm = WidgetArm([READY, POLISHING, POLISHED], posts=[conflict()])
    result = polish(make_client, clock, arm).run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget", "GET widget"]  # one read for proof, no resend
    assert result["status"] == "Succeeded" and result["state_after"] == POLISHED


def test_a_409_while_the_resource_shows_nothing_taken_fails(make_client, clock):
    arm = WidgetArm([READY], posts=[conflict()])
    with pytest.raises(ArmError, match=r"^Conflict \(HTTP 409\): another operation is in progress"):
        polish(make_client, clock, arm).run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget"]


def test_without_attach_on_conflict_a_409_fails_at_once(make_client, clock):
    arm = WidgetArm([READY, POLISHING], posts=[conflict()])
    task = polish(make_client, clock, arm, cls=ForcedPolish)
    with pytest.raises(ArmError, match=r"^Conflict \(HTTP 409\)") as caught:
        task.run()
    assert caught.value.result["status_code"] == 409
    assert arm.calls == ["GET widget", "POST polish"]  # not even read: whatever it reads, the 409 was a refusal


def test_without_attach_on_conflict_a_5xx_not_resent_still_attaches(make_client, clock):
    error = FakeRaw(500, {"error": {"code": "InternalServerError", "message": "oops"}})  # no Retry-After: not resent
    arm = WidgetArm([READY, POLISHING, POLISHED], posts=[error])
    result = polish(make_client, clock, arm, cls=ForcedPolish).run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget", "GET widget"]
    assert result["status"] == "Succeeded"


# wait: false -----------------------------------------------------------------------------------------------
def test_without_wait_an_operation_ends_in_progress_with_its_url(make_client, clock):
    arm = WidgetArm([READY], posts=[with_operation()])
    result = polish(make_client, clock, arm, wait=False).run()
    assert arm.calls == ["GET widget", "POST polish"] and clock.sleeps == []
    assert result["status"] == "InProgress" and result["operation_url"] == OP and result["changed"] is True
    assert result["completion"] == {"operation_status": "InProgress"} and result["polls"] == 0
    assert "not waiting (wait=false)" in result["msg"]


def test_without_wait_a_bare_204_is_read_once(make_client, clock):
    arm = WidgetArm([READY, POLISHING, POLISHED], posts=[FakeRaw(204)])
    result = polish(make_client, clock, arm, wait=False).run()
    assert arm.calls == ["GET widget", "POST polish", "GET widget"] and clock.sleeps == []
    assert result["status"] == "InProgress" and "operation_url" not in result


# The task's one clock --------------------------------------------------------------------------------------
def test_without_a_deadline_wait_timeout_runs_on_the_clients_clock(make_client, clock):
    client = make_client(WidgetArm([READY]))[0]
    task = Polish(client, options=ActionOptions(wait_timeout=60))
    assert task.deadline.at == clock.now + 60 and task.deadline.clock is clock
    given = Deadline.after(5, clock=clock, sleep=clock.sleep)
    assert task_deadline(client, given, 60) is given
