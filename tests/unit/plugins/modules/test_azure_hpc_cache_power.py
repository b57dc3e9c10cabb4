# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_power's main() called as ansible-core calls it: arguments in, one JSON result out."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_power
from ansible_collections.azure_hpc.cache.tests.unit.fakes import CACHE_PATH, OP, SUB, FakeRaw, cache, module_runner


class PowerArm:  # pylint: disable=too-few-public-methods
    """GET cache -> health states in turn (the last repeats); POST -> posts in turn, its action recorded in
    ``sent``; GET operation -> ops in turn (the last repeats)."""

    def __init__(self, states, posts=(), ops=()):
        self.states, self.posts, self.ops = list(states), list(posts), list(ops)
        self.sent = []

    def __call__(self, method, url):
        path = url.split("?")[0]
        if method == "POST":
            assert path.startswith("https://management.example.test/" + CACHE_PATH + "/"), path
            self.sent.append(path.rsplit("/", 1)[1])
            return self.posts.pop(0)
        if "ascOperations" in url:
            return self.ops.pop(0) if len(self.ops) > 1 else self.ops[0]
        return cache(self.states.pop(0) if len(self.states) > 1 else self.states[0])


def accepted():
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Location": OP + "&monitor=true"})


def done(status="Succeeded"):
    return FakeRaw(200, {"status": status})


@pytest.fixture
def run_module(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_power.main)


BASE = {"name": "c1", "resource_group": "rg", "subscription_id": SUB, "api_version": "v", "poll_interval": 1}
STOP = dict(BASE, state="stopped")
START = dict(BASE, state="started")


@pytest.mark.parametrize("override, fragment", [
    ({"state": "paused"}, "value of state must be one of: started, stopped, got: paused"),
    ({"name": "bad name"}, "name: 'bad name' must be 1 to 80 characters"),
    ({"resource_group": "rg."}, "resource_group: 'rg.' must be 1 to 90 characters"),
    ({"allowed_states": ["Healthy", " "]}, "allowed_states: ['Healthy', ' '] must be a list of non-empty health state names"),
    ({"wait_timeout": 0}, "wait_timeout: 0 must be an integer greater than 0"),
    ({"poll_interval": -1}, "poll_interval: -1 must be an integer greater than 0"),
])
def test_bad_input_fails_naming_the_option_before_any_request(run_module, override, fragment):
    result, built = run_module(dict(STOP, **override))
    assert result["failed"] is True and fragment in result["msg"] and built == []
    assert "Traceback" not in result["msg"]


def test_a_missing_state_fails_before_any_request(run_module):
    result, built = run_module(BASE)
    assert result["failed"] is True and result["msg"] == "missing required arguments: state" and built == []


def test_the_stop_result_keys(run_module):
    arm = PowerArm(["Healthy", "Stopped"], posts=[accepted()], ops=[done("InProgress"), done()])
    result, built = run_module(STOP, arm)
    assert built == [1] and arm.sent == ["stop"]
    assert result["changed"] is True and result["status"] == "Succeeded" and "failed" not in result
    assert result["status_code"] == 202 and result["operation_url"] == OP
    assert result["health_state"] == "Healthy" and result["health_state_after"] == "Stopped"
    assert result["completion"] == {"operation_status": "Succeeded", "cache_state": "Stopped"}
    assert result["polls"] >= 2 and set(result) >= {"msg", "elapsed"}


def test_a_start_answered_204_is_judged_by_the_cache(run_module):
    arm = PowerArm(["Stopped", "Transitioning", "Healthy"], posts=[FakeRaw(204)])
    result, unused = run_module(START, arm)
    assert arm.sent == ["start"] and result["status"] == "Succeeded" and result["changed"] is True
    assert result["status_code"] == 204 and "operation_url" not in result
    assert result["health_state_after"] == "Healthy" and result["completion"] == {"cache_state": "Healthy"}


@pytest.mark.parametrize("args, state, action", [(STOP, "Stopped", "stop"), (STOP, "stopped", "stop"),
                                                 (START, "Healthy", "start"), (START, "Degraded", "start")])
def test_a_cache_already_there_gets_nothing(run_module, args, state, action):
    arm = PowerArm([state])
    result, unused = run_module(args, arm)
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Succeeded"
    assert result["msg"] == "The cache c1 is already %s; no %s was sent" % (state, action)


def test_a_stopping_cache_asked_to_stop_is_waited_for_and_nothing_is_sent(run_module):
    arm = PowerArm(["Stopping", "Stopping", "Stopped"])
    result, unused = run_module(STOP, arm)
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Succeeded"
    assert result["health_state"] == "Stopping" and result["health_state_after"] == "Stopped"


@pytest.mark.parametrize("args, state", [(STOP, "Flushing"), (STOP, "Upgrading"), (START, "Stopping")])
def test_a_state_the_action_is_not_sent_from_is_refused(run_module, args, state):
    arm = PowerArm([state])
    result, unused = run_module(args, arm)
    assert arm.sent == [] and result["failed"] is True and result["status"] == "Refused"
    assert "its health state is %s" % state in result["msg"] and "allowed_states" in result["msg"]
    assert result["changed"] is False and result["health_state"] == state


def test_allowed_states_widen_the_states_a_stop_is_sent_from(run_module):
    arm = PowerArm(["Down", "Stopped"], posts=[accepted()], ops=[done()])
    result, unused = run_module(dict(STOP, allowed_states=["down"]), arm)
    assert arm.sent == ["stop"] and result["status"] == "Succeeded"


def test_check_mode_sends_nothing_and_reports_the_change_a_real_run_would(run_module):
    arm = PowerArm(["Healthy"])
    result, unused = run_module(dict(STOP, _ansible_check_mode=True), arm)
    assert arm.sent == [] and result["changed"] is True and result["status"] == "Succeeded"
    assert result["msg"] == "Check mode: the cache c1 (Healthy) would get a stop"


def test_check_mode_on_a_stopped_cache_asked_to_stop_reports_no_change(run_module):
    arm = PowerArm(["Stopped"])
    result, unused = run_module(dict(STOP, _ansible_check_mode=True), arm)
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Succeeded"


def test_without_wait_the_action_is_in_progress_with_its_operation(run_module):
    arm = PowerArm(["Stopped"], posts=[accepted()])
    result, unused = run_module(dict(START, wait=False), arm)
    assert arm.sent == ["start"] and result["status"] == "InProgress" and result["operation_url"] == OP
    assert result["changed"] is True
