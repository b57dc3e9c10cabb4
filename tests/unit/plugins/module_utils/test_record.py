# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of a backend maintenance run on the cache: the hold, ownership from what was sent, resume of
what this run suspended, recovery of an interrupted run's record, and a forged record."""

from __future__ import annotations

import json

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import STALE_MARGIN
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.identity import Identity
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.protocol import MaintenanceRecord
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.release import suspended_by
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import (
    HOLD_TAG,
    TARGET_TAG,
    Holder,
    cache_hash,
    entry_value,
    read_record,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.tests.unit.fakes import REF, SUB, FakeRaw, RecordArm

NOW = 1_800_000_000
HASH = cache_hash(REF)
PAST = NOW - 1 - STALE_MARGIN  # a bound so far past that every controller's clock sees it passed


def holder(run="other", until=NOW + 3600, host="ctl-b", boot="b00t", pid=4242, pstart=77, ns="4026531836"):
    return Holder(run, host, boot, pid, pstart, min(NOW, until) - 60, until, HASH, ns).encode()


def make(make_client, tags=None, targets=None, run="run1", take_over=False, local=None, process=(0, 0),
         controller="ctl-a", boot="b00t", deny_tags=None, resume=None, check_mode=False, health="Healthy",
         ns="4026531836", running=(), clock=None):
    arm = RecordArm(tags=tags, targets=targets, resume=resume, deny_tags=deny_tags, health=health,
                    date=clock or (lambda: NOW))
    client = make_client(arm)[0]
    identity = Identity(controller, boot, ns, process[0], process[1],
                        alive=lambda pid, pstart: (pid, pstart) in running)
    client.sleep = identity.watching(client.sleep)
    options = ActionOptions(wait_timeout=3600, poll_interval=5, confirm_timeout=60, check_mode=check_mode)
    record = MaintenanceRecord(CacheOperations(client, "v"), REF, run=run, identity=identity, hold_seconds=600,
                               take_over=take_over, local_record=local, options=options,
                               deadline=Deadline.after(3600, clock=client.clock, sleep=client.sleep),
                               wall_clock=clock or (lambda: NOW))
    return record, arm


def ours(arm, run="run1"):
    rec = read_record(arm.tags, HASH)
    return rec.holder.run if rec.holder else None, {n: r for n, r in rec.entries.items() if r == run}


# The hold ---------------------------------------------------------------------------------------------
def test_a_free_cache_is_held_and_only_targets_not_suspended_are_recorded(make_client):
    record, arm = make(make_client, tags={"owner": "team-a"},
                       targets={"filer-01": ["Ready"], "filer-02": ["suspended"], "blob-01": ["Busy", "Suspended"]})
    result = record.hold(["filer-01", "filer-02", "blob-01"])
    assert result["to_suspend"] == ["filer-01"]
    assert [s["name"] for s in result["not_ours"]] == ["filer-02", "blob-01"]  # lower case, and Busy settling
    assert ours(arm) == ("run1", {"filer-01": "run1"})
    assert arm.tags["owner"] == "team-a" and arm.posts == []  # the cache's other tags are left alone


def test_the_hold_fits_arm_limits():
    long_host = Holder("r" * 32, "h" * 63, "b" * 8, 4194304, 10 ** 12, NOW, NOW + 10 ** 6, HASH).encode()
    assert len(long_host) <= 256
    assert len(TARGET_TAG + "x" * 80) <= 512 and not set("<>%&\\?/") & set(TARGET_TAG + HOLD_TAG)


def test_a_live_hold_of_another_run_is_refused_and_nothing_is_sent(make_client):
    tags = {HOLD_TAG: holder(), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    with pytest.raises(HpcCacheError, match=r"held by another maintenance run \(run other on controller ctl-b, "
                                            r"pid 4242, since .*, until .*\): nothing was sent.*take_over"):
        record.hold(["filer-01"])
    assert arm.patches == [] and arm.posts == []


def test_the_check_of_a_pre_job_fails_on_a_live_hold_and_sends_nothing(make_client):
    record, arm = make(make_client, tags={HOLD_TAG: holder()}, targets={"filer-01": ["Suspended"]})
    with pytest.raises(HpcCacheError, match="held by another maintenance run"):
        record.check()
    assert arm.patches == [] and arm.posts == []


def test_a_stale_record_is_recovered_first_resuming_every_entry_whatever_it_reads(make_client):
    # finding 1: a target that reads Ready may have a suspend still running or not yet shown (the real service
    # was never recorded showing Suspended): its entry goes only once a resume Succeeded (I1)
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH),
            TARGET_TAG + "filer-02": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"], "filer-02": ["Ready"]})
    result = record.hold([])
    outcomes = {r["name"]: r["outcome"] for r in result["recovered"]}
    assert outcomes == {"filer-01": "resumed", "filer-02": "resumed"}
    assert arm.posts == [("resume", "filer-01"), ("resume", "filer-02")]
    assert read_record(arm.tags, HASH).entries == {} and ours(arm)[0] == "run1"


def test_a_hold_just_past_its_bound_is_still_live_for_clock_skew(make_client):
    tags = {HOLD_TAG: holder(until=NOW - 1), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    with pytest.raises(HpcCacheError, match="held by another maintenance run"):
        record.hold([])
    assert arm.posts == [] and arm.patches == []


def test_recovery_waits_while_the_target_is_busy_and_retries_a_conflict(make_client):
    conflict = FakeRaw(409, {"error": {"code": "Conflict", "message": "another operation runs"}})
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Busy", "Busy", "Ready"]},
                       resume={"filer-01": [conflict, conflict]})
    result = record.hold([])
    assert result["recovered"][0]["outcome"] == "resumed"
    assert arm.posts == [("resume", "filer-01")] * 3 and read_record(arm.tags, HASH).entries == {}


def test_a_failed_recovery_keeps_the_entry_resumes_the_others_and_suspends_nothing(make_client):
    refused = FakeRaw(400, {"error": {"code": "BadRequest", "message": "no"}})
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH),
            TARGET_TAG + "filer-02": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Ready"], "filer-02": ["Ready"], "x-3": ["Ready"]},
                       resume={"filer-01": [refused]})
    with pytest.raises(HpcCacheError, match=r"filer-01 of cache c1, left by an interrupted run, failed: filer-01 \(it "
                                            r"read Ready\).*next run resumes them first"):
        record.hold(["x-3"])
    assert arm.posts == [("resume", "filer-01"), ("resume", "filer-02")]  # I6: one failure stops no other
    rec = read_record(arm.tags, HASH)
    assert rec.entries == {"filer-01": "other"} and rec.holder is None  # this run's hold is dropped


def test_the_check_warns_of_a_stale_record_and_sends_nothing(make_client):
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    result = record.check()
    assert "resumes them first" in result["warnings"][0] and arm.posts == [] and arm.patches == []


def test_a_dead_holder_on_this_controller_is_recovered_at_once(make_client):
    dead = holder(host="ctl-a", pid=999999, pstart=1)  # no such process on this controller, boot and namespace
    tags = {HOLD_TAG: dead, TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    result = record.hold([])
    assert result["recovered"][0]["outcome"] == "resumed" and result["record"]["holder"]["state"] == "dead"


@pytest.mark.parametrize("ns, written_ns", [("4026532000", "4026531836"), ("4026531836", "")])
def test_a_holder_in_another_pid_namespace_or_of_unknown_namespace_is_never_judged_dead(
        make_client, ns, written_ns):
    # finding 3: two containers with one host name and boot see different process tables
    tags = {HOLD_TAG: holder(host="ctl-a", pid=999999, pstart=1, ns=written_ns),
            TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]}, ns=ns)
    with pytest.raises(HpcCacheError, match="held by another maintenance run"):
        record.hold([])
    assert arm.posts == [] and arm.patches == []


def test_a_live_hold_on_another_controller_is_taken_over_on_the_operators_word(make_client):
    tags = {HOLD_TAG: holder(), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]}, take_over=True)
    result = record.hold([])
    assert arm.posts == [("resume", "filer-01")] and result["recovered"][0]["outcome"] == "resumed"
    assert ours(arm)[0] == "run1"


def test_two_runs_at_one_moment_only_the_last_writer_goes_on(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    real = arm.__call__

    def racing(method, url):
        answer = real(method, url)
        if method == "PATCH" and any(k == HOLD_TAG for k in arm.patches[-1]["properties"]["tags"]):
            arm.tags[HOLD_TAG] = holder(run="rival")  # the other run's write lands just after ours
        return answer

    racing.receive = arm.receive
    record.ops.client.session.script = racing
    with pytest.raises(HpcCacheError, match=r"Another maintenance run took the hold on c1 at the same moment \(run rival"):
        record.hold(["filer-01"])
    assert read_record(arm.tags, HASH).entries == {} and arm.posts == []


def test_tags_that_cannot_be_written_refuse_the_run(make_client):
    denied = FakeRaw(403, {"error": {"code": "RequestDisallowedByPolicy", "message": "tags are locked"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, deny_tags=denied)
    with pytest.raises(HpcCacheError, match="could not be written on the cache c1: RequestDisallowedByPolicy.*"
                                            "cache_maintenance_local_record"):
        record.hold(["filer-01"])
    assert arm.posts == []


def test_the_opt_in_local_record_is_used_when_tags_cannot_be_written(make_client, tmp_path):
    denied = FakeRaw(403, {"error": {"code": "AuthorizationFailed", "message": "no tags/write"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, deny_tags=denied, local=str(tmp_path / "rec"))
    result = record.hold(["filer-01"])
    assert result["kept_in"] == "controller-local record" and "this controller only" in result["warnings"][0]
    assert (tmp_path / "rec").stat().st_mode & 0o777 == 0o700
    released = record.release(["filer-01"])
    assert [r["outcome"] for r in released["resumed"]] == ["resumed"]
    assert read_record(record.local.read(), HASH).holder is None


# Giving it back -----------------------------------------------------------------------------------
def test_every_target_recorded_for_this_run_is_resumed_whatever_it_reads_and_reported(make_client):
    # finding 5: a suspend module killed after its POST reports nothing; its target is resumed all the same
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    record.hold(["filer-01", "filer-02"])
    result = record.release([])
    assert arm.posts == [("resume", "filer-01"), ("resume", "filer-02")]
    assert {r["name"]: r["outcome"] for r in result["resumed"]} == {"filer-01": "resumed", "filer-02": "resumed"}
    assert read_record(arm.tags, HASH).entries == {} and read_record(arm.tags, HASH).holder is None


def test_a_failed_resume_keeps_the_record_and_the_hold_and_names_what_it_read(make_client):
    failed = FakeRaw(400, {"error": {"code": "BadRequest", "message": "refused"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]},
                       resume={"filer-01": [failed]})
    record.hold(["filer-01", "filer-02"])
    with pytest.raises(HpcCacheError, match=r"filer-01 of cache c1, recorded by this run, may still be suspended: "
                                            r"filer-01 \(it read Ready\): BadRequest"):
        record.release([])
    assert arm.posts == [("resume", "filer-01"), ("resume", "filer-02")]
    assert ours(arm) == ("run1", {"filer-01": "run1"})


def test_a_failed_cleanup_stops_no_resume(make_client):
    # finding 7: a record delete answered 409 during release abandons nothing
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    record.hold(["filer-01", "filer-02"])
    real = record.ops.client.session.script

    def conflict_on_delete(method, url):
        if method == "PATCH" and b'"Delete"' in (arm.data or b""):
            arm.patches.append("refused")
            return FakeRaw(409, {"error": {"code": "AnotherOperationInProgress", "message": "busy"}})
        return real(method, url)

    conflict_on_delete.receive = arm.receive
    record.ops.client.session.script = conflict_on_delete
    result = record.release([])
    assert arm.posts == [("resume", "filer-01"), ("resume", "filer-02")]
    assert [r["outcome"] for r in result["resumed"]] == ["resumed", "resumed"]
    assert any("could not be removed" in w for w in result["warnings"])
    assert ours(arm) == ("run1", {"filer-01": "run1", "filer-02": "run1"})  # the next run resumes them again


def test_a_throttled_hold_write_is_decided_again_after_its_retry_after(make_client):
    # finding 6: another run took the hold while this run's write waited out a 429: this run stops
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    real = record.ops.client.session.script

    def throttled(method, url):
        if method == "PATCH" and not arm.patches:
            arm.patches.append("throttled")
            arm.tags[HOLD_TAG] = holder(run="rival")  # the rival writes while this run waits
            return FakeRaw(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "7"})
        return real(method, url)

    throttled.receive = arm.receive
    record.ops.client.session.script = throttled
    with pytest.raises(HpcCacheError, match="held by another maintenance run"):
        record.hold(["filer-01"])
    assert arm.patches == ["throttled"] and arm.posts == [] and ours(arm)[0] == "rival"


def test_a_renewal_retried_after_a_long_retry_after_counts_its_bound_from_the_try_sent(make_client, clock):
    # simulator seed 60229: a renewal answered 429 (Retry-After 120) twice was sent 240 s later with the bound it
    # had made at the first try (hold 120: already past), so the next run judged the live run's hold stale
    start = clock()

    def wall():
        return NOW + (clock() - start)

    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, clock=wall)
    record.hold(["filer-01"])
    # the renewal is a module run of its own (state=renewed): its hold is the 600 s asked for
    record, arm = make(make_client, tags=dict(arm.tags), targets={"filer-01": ["Ready"]}, clock=wall)
    real = record.ops.client.session.script
    throttled = [2]

    def slow(method, url):
        if method == "PATCH" and throttled[0] > 0:
            throttled[0] -= 1
            return FakeRaw(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "120"})
        return real(method, url)

    slow.receive = arm.receive
    record.ops.client.session.script = slow
    record.renew()
    assert throttled == [0] and clock() - start >= 240
    # the bound written counts from the try that was sent: hold (600) from then, not from the first try
    assert read_record(arm.tags, HASH).holder.until >= wall() + 600 - 1


def test_a_target_deleted_since_counts_as_resolved_with_a_warning(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    record.hold(["filer-01"])
    del arm.targets["filer-01"]
    result = record.release(["filer-01"])
    assert result["resumed"][0]["outcome"] == "gone" and "no longer exists" in result["warnings"][-1]
    assert read_record(arm.tags, HASH).holder is None


# A forged record ----------------------------------------------------------------------------------
def test_a_forged_record_can_only_ask_for_a_resume(make_client):
    tags = {TARGET_TAG + "filer-01": entry_value("forger", HASH),  # valid: resumed (a harmless request)
            TARGET_TAG + "..%2f": entry_value("forger", HASH),  # a name the API refuses: ignored
            TARGET_TAG + "filer-02": entry_value("forger", "another-cache"),  # names another cache: ignored
            HOLD_TAG: "v1;run={{ lookup('pipe','id') }};until=9"}  # malformed: ignored, never templated
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Ready"], "filer-02": ["Suspended"]})
    result = record.hold([])
    assert arm.posts == [("resume", "filer-01")] and [r["name"] for r in result["recovered"]] == ["filer-01"]
    assert sorted(result["record"]["ignored_tags"]) == sorted([TARGET_TAG + "..%2f", TARGET_TAG + "filer-02",
                                                               HOLD_TAG])


def test_the_record_names_the_cache_by_its_normalized_id():
    assert cache_hash(CacheRef(SUB, "RG-HPC", "Cache-1")) == cache_hash(CacheRef(SUB.upper(), "rg-hpc", "cache-1"))
    assert cache_hash(CacheRef(SUB, "a_b", "c")) != cache_hash(CacheRef(SUB, "a", "b_c"))


def test_ownership_comes_from_the_suspends_sent():
    results = [
        {"ansible_loop_var": "t", "t": "filer-01", "operations": [{"action": "flush"}, {"action": "suspend"}]},
        {"ansible_loop_var": "t", "t": "filer-02", "operations": [{"action": "flush"}], "failed": True},
        {"ansible_loop_var": "t", "t": "filer-03", "operations": []},
        {"ansible_loop_var": "t", "t": "filer-04", "failed": True, "msg": "crashed"},
        {"ansible_loop_var": "t", "t": "filer-05", "operations": [{"action": "suspend", "status": "Failed"}]},
        "junk",
    ]
    assert suspended_by(results) == ["filer-01", "filer-05"]


def test_check_mode_recovers_nothing_and_writes_nothing(make_client):
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]}, check_mode=True)
    result = record.hold(["filer-01"])
    assert result["recovered"][0]["outcome"] == "would resume" and arm.posts == [] and arm.patches == []


def test_the_check_lets_a_take_over_through_with_a_warning(make_client):
    record, arm = make(make_client, tags={HOLD_TAG: holder()}, take_over=True)
    result = record.check()
    assert "taken over on the operator's word" in result["warnings"][0] and arm.posts == [] and arm.patches == []


def test_the_hold_is_taken_before_anything_is_recovered(make_client):
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    order = []
    real = record.ops.client.session.script

    def watch(method, url):
        order.append("hold" if method == "PATCH" and "Merge" in (arm.data or b"").decode() else method)
        return real(method, url)

    watch.receive = arm.receive
    record.ops.client.session.script = watch
    record.hold([])
    assert order.index("hold") < order.index("POST")


def test_a_hold_that_fails_after_it_was_written_leaves_nothing(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    with pytest.raises(HpcCacheError, match="no target filer-09"):
        record.hold(["filer-01", "filer-09"])  # filer-09 does not exist
    assert read_record(arm.tags, HASH).holder is None and arm.posts == []


def test_no_room_for_the_record_refuses_before_writing(make_client):
    tags = {"t%02d" % i: "x" for i in range(48)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    with pytest.raises(HpcCacheError, match="has 48 tags; the record of this run needs 3 more"):
        record.hold(["filer-01", "filer-02"])
    assert arm.patches == []


def test_a_renewal_recovers_nothing_and_fails_once_the_hold_was_taken(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "ops-02": ["Suspended"]})
    record.hold(["filer-01"])
    arm.tags[TARGET_TAG + "ops-02"] = entry_value("forger", HASH)  # planted mid-run
    record.renew()
    assert arm.posts == []
    arm.tags[HOLD_TAG] = holder(run="rival")
    with pytest.raises(HpcCacheError, match="no longer this run's"):
        record.renew()


def test_after_a_take_over_the_first_run_leaves_the_takers_targets_and_fails(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    record.hold(["filer-01"])
    arm.tags = {HOLD_TAG: holder(run="taker")}  # the taker recovered filer-01 and holds the cache
    with pytest.raises(HpcCacheError, match="was taken by run taker while this run worked: this run sent nothing"):
        record.release(["filer-01"])
    assert arm.posts == []


def test_a_far_future_or_absurd_hold_is_ignored_not_obeyed(make_client):
    forged = Holder("forger", "x", "b", 1, 1, NOW, NOW + 10 ** 15, HASH).encode()
    record, arm = make(make_client, tags={HOLD_TAG: forged}, targets={"filer-01": ["Ready"]})
    assert record.check()["record"]["holder"] is None


# Before the hold: the health gate and the names --------------------------------------------------------
@pytest.mark.parametrize("health", ["Upgrading", "Flushing", "Stopped", "Unknown"])
def test_a_cache_in_a_state_not_allowed_is_refused_before_anything_is_written(make_client, health):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, health=health)
    with pytest.raises(HpcCacheError, match=r"Refusing backend maintenance on c1: its health state is %s \(said\); "
                                            r"allowed states are Healthy, Degraded \(allowed_states\)\. Nothing was "
                                            r"suspended" % health) as raised:
        record.gate(["Healthy", "Degraded"])
    assert raised.value.result["status"] == "Refused" and raised.value.result["health_state"] == health
    assert arm.patches == [] and arm.posts == []


def test_the_gate_compares_states_without_case_and_reports_the_state(make_client):
    record, _arm = make(make_client, health="degraded")
    record.gate([" Degraded "])
    assert record.result["health_state"] == "degraded" and record.result["health_description"] == "said"


def test_names_are_matched_to_the_caches_targets_without_case_once_each(make_client):
    record, _arm = make(make_client, targets={"Filer-01": ["Ready"], "blob-01": ["Ready"]})
    assert record.resolve(["filer-01", "FILER-01", "Blob-01"]) == ["Filer-01", "blob-01"]
    assert record.resolve(["*"]) == ["Filer-01", "blob-01"]
    assert record.resolve(["blob-01", "filer-01", "BLOB-01"]) == ["blob-01", "Filer-01"]  # in the order asked


def test_a_name_the_cache_does_not_have_fails_naming_those_it_has(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    with pytest.raises(HpcCacheError, match=r"The cache c1 has no storage target nope \(storage_targets\); it has "
                                            r"filer-01\. Nothing was suspended"):
        record.resolve(["filer-01", "nope"])
    assert arm.patches == [] and arm.posts == []


# The fence (I2, I4) -------------------------------------------------------------------------------
def _suspend_script(record, arm, before_post):
    real = record.ops.client.session.script

    def script(method, url):
        if method == "POST":
            before_post(arm)
        return real(method, url)

    script.receive = arm.receive
    record.ops.client.session.script = script


def test_a_suspend_is_sent_only_while_the_hold_is_this_runs(make_client):
    # finding 2: another run recovered the record while this run worked: its next suspend is never sent
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    record.hold(["filer-01", "filer-02"])
    taken = []

    real = record.ops.client.session.script

    def take_after_first(method, url):
        answer = real(method, url)
        if method == "POST" and not taken:  # the first suspend went out; then another run takes the hold
            arm.tags[HOLD_TAG] = holder(run="rival")
            taken.append(True)
        return answer

    take_after_first.receive = arm.receive
    record.ops.client.session.script = take_after_first
    with pytest.raises(HpcCacheError, match="Suspending the storage target filer-02 of cache c1 failed: The hold on "
                                            "c1 is no longer this run's"):
        record.suspend(["filer-01", "filer-02"], flush=False)
    assert arm.posts == [("suspend", "filer-01")]


def test_a_throttled_suspend_is_fenced_again_before_it_is_resent(make_client):
    # findings 2 and 4: a suspend answered 429 is resent after Retry-After only if the fence still passes
    throttled = FakeRaw(429, {"error": {"code": "TooManyRequests", "message": "wait"}}, {"Retry-After": "28"})
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, resume={"filer-01": [throttled]})
    record.hold(["filer-01"])
    real = record.ops.client.sleep

    def sleep_then_lose(seconds):
        real(seconds)
        arm.tags[HOLD_TAG] = holder(run="next-job")  # the next job recovered the record during the wait

    record.ops.client.sleep = sleep_then_lose
    with pytest.raises(HpcCacheError, match="no longer this run's"):
        record.suspend(["filer-01"], flush=False)
    assert arm.posts == [("suspend", "filer-01")]  # the throttled one only: never resent


def test_a_module_whose_playbook_is_gone_sends_nothing_more(make_client):
    # finding 4: ansible-core >= 2.19 detaches workers, so a canceled job's module survives the process group
    alive = {(4242, 7)}
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]}, process=(4242, 7),
                       running=alive)
    record.hold(["filer-01", "filer-02"])
    _suspend_script(record, arm, lambda arm: alive.clear())  # the job is canceled as the first suspend leaves
    with pytest.raises(HpcCacheError, match="playbook of (maintenance run run1|this maintenance run) has ended"):
        record.suspend(["filer-01", "filer-02"], flush=False)
    assert arm.posts == [("suspend", "filer-01")]


def test_a_hold_with_too_little_time_left_is_renewed_before_the_request(make_client):
    now = [NOW]
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, clock=lambda: now[0])
    record.hold(["filer-01"])
    until = read_record(arm.tags, HASH).holder.until
    now[0] = until - 100  # a slow flush used up the hold: 100 s left, less than FENCE_COVER
    record.suspend(["filer-01"], flush=False)
    assert read_record(arm.tags, HASH).holder.until > until and arm.posts == [("suspend", "filer-01")]


def test_a_hold_past_its_bound_is_not_renewed_and_nothing_is_sent(make_client):
    # a run paused (SIGSTOP, a frozen VM) past its hold: another run may be recovering it already
    now = [NOW]
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, clock=lambda: now[0])
    record.hold(["filer-01"])
    # less than RENEW_BOUND left on this controller's clock: another controller, its clock ahead, may judge
    # the hold past its bound already
    now[0] = read_record(arm.tags, HASH).holder.until - 60
    with pytest.raises(HpcCacheError, match="ran out"):
        record.suspend(["filer-01"], flush=False)
    assert arm.posts == []


def test_a_renewal_of_a_hold_past_its_bound_writes_nothing(make_client):
    # the role's renewal (state=renewed) of a run paused past its hold: less than RENEW_BOUND left on this
    # controller's clock, so another run may be recovering it already; the holder never renews then
    now = [NOW]
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, clock=lambda: now[0])
    record.hold(["filer-01"])
    until = read_record(arm.tags, HASH).holder.until
    record, arm = make(make_client, tags=dict(arm.tags), targets={"filer-01": ["Ready"]}, clock=lambda: now[0])
    now[0] = until - 60
    with pytest.raises(HpcCacheError, match="ran out"):
        record.renew()
    assert arm.patches == [] and read_record(arm.tags, HASH).holder.until == until


def test_only_recorded_targets_are_suspended(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]})
    record.hold(["filer-01"])
    with pytest.raises(HpcCacheError, match="filer-02 are not recorded for run run1"):
        record.suspend(["filer-01", "filer-02"], flush=False)
    assert arm.posts == []


# Record writes (I5) ---------------------------------------------------------------------------------
def test_an_accepted_tags_write_is_followed_to_its_end(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    real = record.ops.client.session.script
    pending = []

    def async_tags(method, url):
        if method == "PATCH":
            answer = real(method, url)  # the write lands once its operation ends: applied now, shown later
            pending.append(dict(arm.tags))
            return FakeRaw(202, None, {"Location": "https://management.example.test/tagsop/1?api-version=x"})
        if "/tagsop/" in url:
            return FakeRaw(200, {"properties": {"tags": pending[-1]}})
        return real(method, url)

    async_tags.receive = arm.receive
    record.ops.client.session.script = async_tags
    result = record.hold(["filer-01"])
    assert result["to_suspend"] == ["filer-01"] and ours(arm) == ("run1", {"filer-01": "run1"})


def test_a_stale_read_after_the_hold_write_is_read_again_not_taken_for_a_rival(make_client):
    old = holder(until=PAST)  # an interrupted run's hold, as reads go on showing it for a while
    record, arm = make(make_client, tags={HOLD_TAG: old}, targets={"filer-01": ["Ready"]})
    real = record.ops.client.session.script
    stale = [3]  # the next three reads of the cache show the tags as they were

    def lagging(method, url):
        answer = real(method, url)
        if method == "GET" and url.split("?")[0].endswith("/caches/c1") and arm.patches and stale[0] > 0:
            stale[0] -= 1
            return FakeRaw(200, {"id": "/c1", "name": "c1", "tags": {HOLD_TAG: old},
                                 "properties": {"health": {"state": "Healthy"}}})
        return answer

    lagging.receive = arm.receive
    record.ops.client.session.script = lagging
    assert record.hold(["filer-01"])["to_suspend"] == ["filer-01"] and stale[0] == 0


def test_a_late_hold_write_over_another_runs_hold_is_put_right_whatever_a_read_behind_shows(make_client):
    # this run's write of its hold is accepted (202) and lands late, over the hold another run took meanwhile;
    # the reads just after it lands still show the tags as they were (the other run's hold): they are read
    # again, not believed, and the other run's hold is written back before this run stops
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    other = holder(run="rival")
    real = record.ops.client.session.script
    state = {"ours": None, "status_reads": 0, "behind": 0}

    def late(method, url):
        if method == "PATCH" and state["ours"] is None:
            body = json.loads(arm.data)
            state["ours"] = body["properties"]["tags"][HOLD_TAG]
            return FakeRaw(202, None, {"Location": "https://management.example.test/tagsop/1?api-version=x"})
        if "/tagsop/" in url:
            state["status_reads"] += 1
            if state["status_reads"] == 1:
                arm.tags[HOLD_TAG] = other  # the rival takes the free cache while this run's write is pending
                return FakeRaw(202, None, {"Location": "https://management.example.test/tagsop/1?api-version=x"})
            arm.tags[HOLD_TAG] = state["ours"]  # this run's write lands over it
            state["behind"] = 2
            return FakeRaw(200, {"properties": {"tags": dict(arm.tags)}})
        if method == "GET" and url.split("?")[0].endswith("/caches/c1") and state["behind"] > 0:
            state["behind"] -= 1  # a read behind: the tags as they were before this run's write landed
            return FakeRaw(200, {"id": "/c1", "name": "c1", "tags": dict(arm.tags, **{HOLD_TAG: other}),
                                 "properties": {"health": {"state": "Healthy"}}})
        return real(method, url)

    late.receive = arm.receive
    record.ops.client.session.script = late
    with pytest.raises(HpcCacheError, match="run rival took the hold while this run's write of its own was pending"):
        record.hold(["filer-01"])
    assert arm.tags[HOLD_TAG] == other and state["behind"] == 0 and arm.posts == []


def test_a_controller_clock_far_from_azures_refuses_before_writing(make_client):
    record, arm = make(make_client, targets={"filer-01": ["Ready"]})
    arm.date = lambda: NOW + 600  # Azure's clock reads 08:10:00 when this controller's reads 08:00:00
    with pytest.raises(HpcCacheError, match="clock is 600 s behind Azure's"):
        record.hold(["filer-01"])
    assert arm.patches == [] and arm.posts == []


def test_without_a_date_from_azure_no_bound_is_judged_passed(make_client):
    # fail closed: a bound is judged on a clock checked against Azure's, or not at all
    tags = {HOLD_TAG: holder(until=PAST), TARGET_TAG + "filer-01": entry_value("other", HASH)}
    record, arm = make(make_client, tags=tags, targets={"filer-01": ["Suspended"]})
    arm.date = None
    with pytest.raises(HpcCacheError, match="held by another maintenance run"):
        record.hold([])
    assert arm.posts == [] and arm.patches == []


def test_an_unreadable_local_record_fails_and_is_kept(make_client, tmp_path):
    denied = FakeRaw(403, {"error": {"code": "AuthorizationFailed", "message": "no tags/write"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, deny_tags=denied, local=str(tmp_path / "rec"))
    record.hold(["filer-01"])
    with open(record.local.path, "w", encoding="utf-8") as handle:
        handle.write('{"hpc-maintenance-target-filer-01": "v1;run=run1')  # torn by hand
    with pytest.raises(HpcCacheError, match="is unreadable; it is kept as it is"):
        record.release([])
    assert arm.posts == [] and "torn" not in open(record.local.path, encoding="utf-8").read()
    assert open(record.local.path, encoding="utf-8").read().endswith("run=run1")


def test_a_step_that_waits_longer_than_its_hold_keeps_the_hold(make_client, clock):
    # A release waits on a resume (a slow operation of the service) longer than the hold has left:
    # the wait keeps the hold (renewed as the fence does), so no other run judges this live run's hold stale, and
    # the resume's end is waited for, and the record given back. Wall time passes five times as fast as the task's clock here.
    start = clock.now
    record, arm = make(make_client, targets={"filer-01": ["Ready"]}, process=(4242, 7), running={(4242, 7)},
                       clock=lambda: NOW + 5 * (clock.now - start))
    record.hold(["filer-01"])
    record.suspend(["filer-01"], flush=False)
    until = read_record(arm.tags, HASH).holder.until
    arm.in_progress = 700  # the resume's operation runs on for about 3000 s of the task's clock
    renewals = len(arm.patches)
    result = record.release(["filer-01"])
    assert NOW + 5 * (clock.now - start) > until  # the wait outlasted the hold as it was before the release
    assert [r["outcome"] for r in result["resumed"]] == ["resumed"]
    assert arm.posts == [("suspend", "filer-01"), ("resume", "filer-01")]
    held = [p for p in arm.patches[renewals:] if p["operation"] == "Merge" and HOLD_TAG in p["properties"]["tags"]]
    assert held, "the hold was never renewed while the release waited"
    assert ours(arm) == (None, {})  # given back at the end


# Several targets at once (issue: outages of their own) ------------------------------------------------
def test_the_release_sends_every_resume_before_following_any_and_a_409_is_sent_again_after(make_client):
    busy = FakeRaw(409, {"error": {"code": "Conflict", "message": "another operation runs"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]},
                       resume={"filer-01": [busy]})
    record.hold(["filer-01", "filer-02"])
    result = record.release([])
    # filer-02's resume is not held back by filer-01's conflict: it is sent and followed, then filer-01's again
    assert arm.log == ["resume filer-01", "resume filer-02", "resume filer-01", "status", "status"]
    assert [(r["name"], r["outcome"]) for r in result["resumed"]] == [("filer-01", "resumed"), ("filer-02", "resumed")]
    assert result["health_state_after"] == "Healthy"  # read after every resume ended: the role waits no more
    assert read_record(arm.tags, HASH).entries == {} and read_record(arm.tags, HASH).holder is None


def test_one_failed_suspend_stops_the_others_before_they_are_sent(make_client):
    refused = FakeRaw(400, {"error": {"code": "BadRequest", "message": "refused"}})
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]},
                       resume={"filer-01": [refused]})
    record.hold(["filer-01", "filer-02"])
    with pytest.raises(HpcCacheError, match="Suspending the storage target filer-01 of cache c1 failed: .*BadRequest") \
            as caught:
        record.suspend(["filer-01", "filer-02"], flush=False)
    assert arm.posts == [("suspend", "filer-01")]
    assert [(r["name"], r.get("failed", False)) for r in caught.value.result["targets"]] == [
        ("filer-01", True), ("filer-02", False)]
    assert caught.value.result["targets"][1]["operations"] == []  # read, never sent to


def test_the_suspend_step_leaves_nearly_a_full_hold_renewing_one_a_long_flush_used(make_client):
    now = [NOW]
    record, arm = make(make_client, targets={"filer-01": ["Ready"], "filer-02": ["Ready"]}, clock=lambda: now[0])
    record.hold(["filer-01"])
    until = read_record(arm.tags, HASH).holder.until
    assert record.suspend(["filer-01"], flush=False)["hold_until"] == until  # nearly full: left alone
    assert read_record(arm.tags, HASH).holder.until == until
    record, arm = make(make_client, tags=dict(arm.tags), targets={"filer-01": ["Suspended"]}, clock=lambda: now[0])
    now[0] = until - 300  # a long flush used the hold: 300 s left, less than 90% of the 600 s asked for
    result = record.suspend(["filer-01"], flush=False)
    assert result["hold_until"] == now[0] + 600 == read_record(arm.tags, HASH).holder.until
