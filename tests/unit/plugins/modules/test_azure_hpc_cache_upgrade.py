# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_upgrade's main() called as ansible-core calls it: arguments in, one JSON result out."""

from __future__ import annotations

import pytest

from ansible_collections.azure_hpc.cache.plugins.modules import azure_hpc_cache_upgrade
from ansible_collections.azure_hpc.cache.tests.unit.fakes import CACHE_PATH, OP, SUB, FakeRaw, module_runner

PENDING = {"currentFirmwareVersion": "6.1.0", "firmwareUpdateStatus": "available",
           "firmwareUpdateDeadline": "2026-12-04T00:00:00Z", "pendingFirmwareVersion": "6.2.1"}
CURRENT = {"currentFirmwareVersion": "6.1.0", "firmwareUpdateStatus": "unavailable",
           "firmwareUpdateDeadline": "0001-01-01T00:00:00Z", "pendingFirmwareVersion": ""}
UPGRADED = dict(CURRENT, currentFirmwareVersion="6.2.1")


def cache(state, upgrade):
    props = {"health": {"state": state, "statusDescription": "said %s" % state}, "provisioningState": "Succeeded"}
    if upgrade is not None:
        props["upgradeStatus"] = upgrade
    return FakeRaw(200, {"id": "/" + CACHE_PATH, "name": "c1", "properties": props})


class UpgradeArm:  # pylint: disable=too-few-public-methods
    """GET cache -> (state, upgradeStatus) in turn (the last repeats); POST -> posts in turn, its action
    recorded in ``sent``; GET operation -> ops in turn (the last repeats)."""

    def __init__(self, reads, posts=(), ops=()):
        self.reads, self.posts, self.ops = list(reads), list(posts), list(ops)
        self.sent = []

    def __call__(self, method, url):
        path = url.split("?")[0]
        if method == "POST":
            assert path.startswith("https://management.example.test/" + CACHE_PATH + "/"), path
            self.sent.append(path.rsplit("/", 1)[1])
            return self.posts.pop(0)
        if "ascOperations" in url:
            return self.ops.pop(0) if len(self.ops) > 1 else self.ops[0]
        read = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        return cache(*read)


def accepted():
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Location": OP + "&monitor=true"})


def done(status="Succeeded"):
    return FakeRaw(200, {"status": status})


@pytest.fixture
def run_module(monkeypatch, capsys, make_client, tmp_path):
    return module_runner(monkeypatch, capsys, make_client, tmp_path, azure_hpc_cache_upgrade.main)


BASE = {"name": "c1", "resource_group": "rg", "subscription_id": SUB, "api_version": "v", "poll_interval": 1}


@pytest.mark.parametrize("override, fragment", [
    ({"name": "bad name"}, "name: 'bad name' must be 1 to 80 characters"),
    ({"resource_group": "rg."}, "resource_group: 'rg.' must be 1 to 90 characters"),
    ({"subscription_id": "not-a-guid"}, "subscription_id: 'not-a-guid' must be a GUID"),
    ({"wait_timeout": 0}, "wait_timeout: 0 must be an integer greater than 0"),
    ({"confirm_timeout": -5}, "confirm_timeout: -5 must be an integer greater than 0"),
    ({"flush": "sometimes"}, "argument 'flush' is of type"),  # Ansible's own type check: "... convert to bool"
])
def test_bad_input_fails_naming_the_option_before_any_request(run_module, override, fragment):
    result, built = run_module(dict(BASE, **override))
    assert result["failed"] is True and fragment in result["msg"] and built == []
    assert "Traceback" not in result["msg"]


def test_a_missing_name_fails_before_any_request(run_module):
    args = dict(BASE)
    del args["name"]
    result, built = run_module(args)
    assert result["failed"] is True and result["msg"] == "missing required arguments: name" and built == []


def test_the_upgrade_result_keys_after_a_flush(run_module):
    arm = UpgradeArm([("Healthy", PENDING), ("Healthy", PENDING), ("Healthy", PENDING),
                      ("Upgrading", PENDING), ("Healthy", UPGRADED)],
                     posts=[accepted(), accepted()], ops=[done(), done("InProgress"), done()])
    result, built = run_module(BASE, arm)
    assert built == [1] and arm.sent == ["flush", "upgrade"]  # flush: true is the default
    assert result["changed"] is True and result["status"] == "Succeeded" and "failed" not in result
    assert result["status_code"] == 202 and result["operation_url"] == OP
    assert result["health_state"] == "Healthy" and result["health_state_after"] == "Healthy"
    assert result["completion"] == {"operation_status": "Succeeded", "cache_state": "Healthy"}
    assert (result["firmware_before"], result["firmware_after"]) == ("6.1.0", "6.2.1")
    assert result["firmware_update_status"] == "unavailable" and result["firmware_update_deadline"] is None
    assert result["pending_firmware"] is None
    assert result["polls"] >= 3 and set(result) >= {"msg", "elapsed"}


def test_flush_false_sends_the_upgrade_alone(run_module):
    arm = UpgradeArm([("Healthy", PENDING), ("Healthy", UPGRADED)], posts=[accepted()], ops=[done()])
    result, unused = run_module(dict(BASE, flush=False), arm)
    assert arm.sent == ["upgrade"] and result["status"] == "Succeeded" and result["changed"] is True


@pytest.mark.parametrize("upgrade_status", [CURRENT, None])
def test_nothing_pending_nothing_sent(run_module, upgrade_status):
    arm = UpgradeArm([("Healthy", upgrade_status)])
    result, unused = run_module(BASE, arm)
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Skipped"
    assert "no software upgrade pending" in result["msg"] and "failed" not in result
    assert result["health_state"] == "Healthy" and result["pending_firmware"] is None


def test_check_mode_sends_nothing_and_reports_the_change_a_real_run_would(run_module):
    arm = UpgradeArm([("Healthy", PENDING)])
    result, unused = run_module(dict(BASE, _ansible_check_mode=True), arm)
    assert arm.sent == [] and result["changed"] is True and result["status"] == "Succeeded"
    assert result["msg"] == "Check mode: the cache c1 (Healthy) would be flushed, then upgraded from 6.1.0 to 6.2.1"
    assert result["firmware_before"] == "6.1.0" and result["pending_firmware"] == "6.2.1"


def test_check_mode_with_nothing_pending_reports_no_change(run_module):
    arm = UpgradeArm([("Healthy", CURRENT)])
    result, unused = run_module(dict(BASE, _ansible_check_mode=True), arm)
    assert arm.sent == [] and result["changed"] is False and result["status"] == "Skipped"


def test_a_cache_not_healthy_or_degraded_is_refused_before_anything_is_sent(run_module):
    arm = UpgradeArm([("Stopped", PENDING)])
    result, unused = run_module(BASE, arm)
    assert arm.sent == [] and result["failed"] is True and result["status"] == "Refused"
    assert result["msg"].startswith("Refusing to upgrade c1: its health state is Stopped (said Stopped)")
    assert result["changed"] is False and result["firmware_before"] == "6.1.0"


def test_without_wait_the_upgrade_is_in_progress_with_its_operation(run_module):
    arm = UpgradeArm([("Healthy", PENDING)], posts=[accepted()])
    result, unused = run_module(dict(BASE, flush=False, wait=False), arm)
    assert arm.sent == ["upgrade"] and result["status"] == "InProgress" and result["operation_url"] == OP
    assert result["changed"] is True and "failed" not in result
