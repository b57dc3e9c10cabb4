#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: azure_hpc_cache_maintenance_record
short_description: Hold an Azure HPC Cache for backend maintenance, and record the storage targets a run suspends
version_added: 0.4.0
description:
  - Keeps the record of a backend maintenance run on the cache itself, as tags written through ARM's Tags API
    (C({cache id}/providers/Microsoft.Resources/tags/default), operations C(Merge) and C(Delete); the resource
    provider is not involved), so every controller that maintains the cache sees it.
  - "The record is a hold (tag C(hpc-maintenance-hold): the run's id, the controller and process it runs in,
    when it started and until when it may hold the cache) and one tag C(hpc-maintenance-target-<name>) per
    storage target the run suspends. The cache's other tags are left alone; the record names the cache by a
    hash of its normalized id (subscription, resource group and name compared without case), so a copied tag
    is ignored."
  - The hold is a lock. While a live run holds the cache, another run (any tags, any controller) fails
    clearly, naming the holder and when its hold ends, and sends nothing. Two runs taking the hold at one
    moment both read it back after a short wait, and only the run whose hold is read goes on.
  - A hold past its bound (with two minutes for clock skew, and a controller whose clock is more than 60 s from
    Azure's refuses to run), or whose process is certainly gone (the same controller, boot and PID namespace,
    and its pid and start time no longer running), is an interrupted run's; V(state=held) recovers it first.
    O(take_over=true) is the operator's word that the holder is gone, whatever its bound.
  - Recovery sends a resume to every storage target the interrupted run recorded, whatever it reads (after
    waiting while it reads C(Busy) or C(Flushing)), and forgets an entry only once its resume succeeded. The
    service accepts a resume of a target that is not suspended, and its state is no proof that a suspend did
    not take effect. So whoever may write the cache's tags can ask for a resume of a target; a name the API
    would refuse is ignored. The collection's docs/maintenance-protocol.md states the protocol and what RBAC
    closes.
  - This module is the record behind the C(azure_hpc.cache.cache_maintenance) role's backend maintenance; a
    runbook may use it the same way around its own storage-target actions.
author:
  - azure_hpc.cache contributors (@azure-hpc)
options:
  cache_name:
    description: The name of the cache.
    type: str
    required: true
  resource_group:
    description: The resource group of the cache.
    type: str
    required: true
  state:
    description:
      - V(checked) reads the record and sends nothing. It fails while another live run holds the cache, and
        warns of an interrupted run's record.
      - V(held) recovers an interrupted run's record, takes (or renews) the hold for O(run_id), and records
        which of O(storage_targets) the run will suspend (RV(to_suspend)), before any suspend.
      - V(suspended) flushes (with O(flush)) and suspends each of O(storage_targets) (by default every target
        recorded for O(run_id)), all together (every flush is sent before any is followed to its end, then every
        suspend), so each target is out of service from its own suspend, and the service runs the operations side
        by side. Just before every request that changes a target, the record is read again, and the request is
        sent only while the hold is this run's with time left to cover it (renewed first when it has less) and
        while the playbook that runs the module still runs. The first failure stops the rest (no further request
        is sent; RV(targets) says what was sent to each). At the end the hold is renewed when it has more than
        a minute less than O(hold) left (RV(hold_until)).
      - V(renewed) extends this run's hold, recovering nothing; it fails when the hold is no longer the run's.
      - V(released) resumes, all together (every resume sent before any is followed), every target recorded for
        this run, and every target O(suspend_results) shows a suspend was sent to, whatever it reads and whatever
        the suspend step reported (a killed module reports nothing), forgets each once its resume operation
        succeeded, and gives the hold back once nothing of the run is recorded. It fails while a target stays
        recorded. While another run holds the cache it sends nothing, and that run recovers what this run recorded.
    type: str
    required: true
    choices: [checked, held, suspended, renewed, released]
  run_id:
    description:
      - The run's id, the same in every call of one run. Required with V(state=held) and V(state=released).
      - Letters and digits, 1 to 32.
    type: str
  controller:
    description:
      - The name of the controller the run is on, recorded with the hold. Where it and the boot match the
        holder's, the holder's process is checked, and a dead holder's record is recovered at once.
      - Defaults to this host's name.
    type: str
  hold:
    description:
      - Seconds the hold lasts from each V(state=held) or V(state=renewed) call. Past it, another run treats this
        run as interrupted and recovers what it suspended.
      - A V(state=held) call with O(storage_targets) holds at least O(wait_timeout) times twice the number of
        targets plus one, to cover their flushes and suspends before the next renewal; and before each request
        that changes a target the hold is renewed when it has less than two minutes left.
      - At most 2592000 (30 days).
    type: int
    default: 7200
  take_over:
    description: Recover a record whose holder is still within its bound, on the operator's word that it is gone.
    type: bool
    default: false
  storage_targets:
    description:
      - With V(state=released), targets to resume beside those the record names for O(run_id) (RV(to_suspend) of
        the V(state=held) call, so that a read showing the record as it was before it was written cannot make the
        release skip one).
      - With V(state=suspended), the targets to suspend (RV(to_suspend) of the V(state=held) call); each must be
        recorded for O(run_id). Empty, every target recorded for it.
      - With V(state=held), the storage targets the run means to suspend, or V(*) alone for every target of the
        cache. Names are checked against the API's rule before any request, then matched to the cache's targets
        without case (the service's spelling is used from then on); a name the cache does not have fails the task
        before anything is written.
      - Each is read, and waited for while it reads C(Busy), C(Flushing) or a state the API does not name; a target
        that then reads C(Suspended) is someone else's and is not recorded.
    type: list
    elements: str
    default: []
  allowed_states:
    description:
      - With V(state=checked) and V(state=held), the cache is read first, and refused (RV(status=Refused), nothing
        sent) unless its health state is one of these, compared without case.
      - Backend maintenance has no state that passes whatever this list says; a C(Flushing), C(Stopped) or
        C(Upgrading) cache is refused unless listed.
    type: list
    elements: str
    default: [Healthy, Degraded]
    version_added: 0.5.0
  suspend_results:
    description:
      - With V(state=released), what this run's suspend step reported (RV(targets) of the V(state=suspended)
        call, or a registered loop's C(results) of M(azure_hpc.cache.azure_hpc_cache_storage_target) tasks). A
        target one of them shows a C(suspend) was sent to is resumed even if its entry is missing; every target
        recorded for the run is resumed whatever they show. A flush or suspend they show still running (it
        outlived O(wait_timeout)) is followed to its end, through its C(operation_url) in C(operations),
        before its target's resume is sent.
    type: list
    elements: dict
    default: []
  flush:
    description: With V(state=suspended), flush each target before its suspend.
    type: bool
    default: true
    version_added: 0.5.1
  flush_results:
    description: B(Deprecated) and ignored (the module returns no summary lines); removed in azure_hpc.cache 1.0.0.
    type: list
    elements: dict
  not_ours:
    description: B(Deprecated) and ignored (the module returns no summary lines); removed in azure_hpc.cache 1.0.0.
    type: list
    elements: dict
  recovered:
    description: B(Deprecated) and ignored (the module returns no summary lines); removed in azure_hpc.cache 1.0.0.
    type: list
    elements: dict
  dns_refresh:
    description: With V(state=released), refresh the DNS of each target after its resume.
    type: bool
    default: false
  local_record_dir:
    description:
      - Where the cache's tags cannot be written (a policy, a missing C(Microsoft.Resources/tags/write)), keep the
        record in this directory on the host the module runs on instead. Without it, the run refuses to
        suspend. A controller-local record cannot be seen from another controller, so another controller can
        neither wait for this run nor recover what it suspended.
    type: path
  api_version:
    description: The Microsoft.StorageCache API version of the cache and storage-target calls.
    type: str
    default: '2026-01-01'
  wait_timeout:
    description: Seconds the task may take, every wait and resume included. Must be greater than 0.
    type: int
    default: 3600
  poll_interval:
    description:
      - The longest pause, in seconds, between status reads when the service sends no C(Retry-After). The first
        read comes after a second, and each pause is a third of the wait so far (at least a second), up to this.
        Must be greater than 0.
    type: int
    default: 10
  confirm_timeout:
    description: Seconds a resumed target may take to read C(Ready) once its resume operation succeeded.
    type: int
    default: 120
extends_documentation_fragment:
  - azure_hpc.cache.auth
  - azure_hpc.cache.attributes
  - azure_hpc.cache.attributes.RECORD_MODULE
seealso:
  - module: azure_hpc.cache.azure_hpc_cache_storage_target
  - name: Tags - Update At Scope (REST API reference)
    description: How the record is written.
    link: https://learn.microsoft.com/rest/api/resources/tags/update-at-scope
"""

EXAMPLES = r"""
- name: Hold the cache and record the filer this run suspends
  azure_hpc.cache.azure_hpc_cache_maintenance_record:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    state: held
    run_id: "{{ run_id }}"
    storage_targets: [filer-01]
  register: held

- name: Suspend what was recorded
  azure_hpc.cache.azure_hpc_cache_storage_target:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    name: "{{ item }}"
    state: suspended
  loop: "{{ held.to_suspend }}"
  register: suspended

- name: Resume what this run suspended, and give the hold back
  azure_hpc.cache.azure_hpc_cache_maintenance_record:
    cache_name: hpc-cache-01
    resource_group: rg-hpc
    state: released
    run_id: "{{ run_id }}"
    suspend_results: "{{ suspended.results | default([]) }}"
"""

RETURN = r"""
record:
  description: The record as read at the start of the task.
  returned: when the cache was read
  type: dict
  contains:
    holder:
      description: The hold (C(run), C(controller), C(pid), C(started), C(until) in seconds since the epoch, C(state)
        V(ours), V(live), V(stale) or V(dead), and C(kept_in)), or null.
      type: dict
    storage_targets:
      description: The storage targets recorded, by any run.
      type: list
      elements: str
    ignored_tags:
      description: Tags of the record that name another cache or are malformed, ignored.
      type: list
      elements: str
targets:
  description:
    - With V(state=suspended), one entry per target the step reached, with C(name), C(operations) (each action
      sent, with C(action), C(status_code), C(operation_url), C(status)), C(state_before), C(state_after), C(elapsed),
      C(msg), and C(failed) on the one that failed.
  returned: with state=suspended
  type: list
  elements: dict
to_suspend:
  description: With V(state=held), the targets recorded for this run to suspend, in the service's spelling.
  returned: with state=held
  type: list
  elements: str
not_ours:
  description: With V(state=held), the targets not recorded, each with C(name), C(state) and C(why).
  returned: with state=held
  type: list
  elements: dict
recovered:
  description:
    - What recovery of an interrupted run's record did, one entry per recorded target, with C(name), C(run),
      C(state_before), C(outcome) (V(resumed), V(gone), V(would resume), V(failed)) and C(msg).
  returned: always
  type: list
  elements: dict
resumed:
  description:
    - With V(state=released), one entry per target of this run, with C(name), C(outcome) (V(resumed),
      V(gone), V(would resume), V(failed)), C(sent), C(state_after) and C(msg).
  returned: with state=released
  type: list
  elements: dict
health_state:
  description: With V(state=checked) and V(state=held), the cache's health state as read before anything else.
  returned: with state=checked or state=held, when the cache was read
  type: str
  sample: Healthy
health_description:
  description: The service's description of that health state, when it gives one.
  returned: with state=checked or state=held, when the cache was read
  type: str
health_state_after:
  description:
    - With V(state=released), the cache's health state as the step's last read of the cache showed it, after every
      resume ended. The role waits for C(Healthy) only when this is not C(Healthy).
  returned: with state=released, when it succeeded and the cache's tags were read
  type: str
  sample: Healthy
  version_added: 0.6.0
hold_until:
  description:
    - With V(state=suspended), when this run's hold ends once every target is suspended (seconds since 1970, on this
      host's clock). The step renews the hold when it has more than a minute less than O(hold) left, so the role's
      first backend task file needs no renewal of its own.
  returned: with state=suspended, when it succeeded (not in check mode)
  type: int
  sample: 1796054400
  version_added: 0.6.0
status:
  description: V(Refused) when the cache's health state is not one of O(allowed_states); nothing was sent.
  returned: when refused
  type: str
  sample: Refused
kept_in:
  description: Where the record is kept, V(tags of the cache) or V(controller-local record).
  returned: with state=held
  type: str
msg:
  description: What was done.
  returned: always
  type: str
"""

import re
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import HpcCacheModule
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ACTION_OPTIONS, ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Option, Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.identity import Identity, controller_name
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.protocol import MaintenanceRecord
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.release import running_by, suspended_by
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import MAX_HOLD
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef


def run_id(value: t.Any, option: str) -> t.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isascii() or not value.isalnum() or len(value) > 32:
        raise ValidationError(option, "%r must be 1 to 32 letters and digits" % (value,))
    return value


def controller(value: t.Any, option: str) -> t.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9._]{0,62}", value):
        raise ValidationError(option, "%r must be a host name: 1 to 63 letters, digits, '-', '.' and '_'" % (value,))
    return value


def hold_seconds(value: t.Any, option: str) -> int:
    seconds: int = rules.positive_int(value, option)
    if seconds > MAX_HOLD:
        raise ValidationError(option, "%d is more than %d (30 days): no run holds a cache that long" % (seconds, MAX_HOLD))
    return seconds


def target_names(value: t.Any, option: str) -> t.List[str]:
    if value == ["*"]:
        return ["*"]
    return [rules.storage_target_name(name, "%s[%d]" % (option, i)) for i, name in enumerate(value or [])]


# Options that gave the summary lines the module no longer returns: accepted, ignored, and to be removed.
DEPRECATED = Option("list", elements="dict", removed_in_version="1.0.0", removed_from_collection="azure_hpc.cache")
# Each declared once; the rules run in this order, before any request.
OPTIONS = Options(
    cache_name=Option("str", required=True, rule=rules.cache_name),
    resource_group=Option("str", required=True, rule=rules.resource_group),
    api_version=ACTION_OPTIONS["api_version"],
    run_id=Option("str", rule=run_id),
    controller=Option("str", rule=controller),
    hold=Option("int", 7200, hold_seconds),
    storage_targets=Option("list", [], target_names, elements="str"),
    wait_timeout=ACTION_OPTIONS["wait_timeout"],
    allowed_states=Option("list", ["Healthy", "Degraded"], rules.state_names, elements="str"),
    poll_interval=ACTION_OPTIONS["poll_interval"],
    confirm_timeout=ACTION_OPTIONS["confirm_timeout"],
    state=Option("str", required=True, choices=("checked", "held", "suspended", "renewed", "released")),
    take_over=Option("bool", False),
    suspend_results=Option("list", [], elements="dict"),
    flush=Option("bool", True),
    flush_results=DEPRECATED, not_ours=DEPRECATED, recovered=DEPRECATED,
    dns_refresh=Option("bool", False),
    local_record_dir=Option("path"),
)


def main() -> None:
    module = HpcCacheModule(OPTIONS, supports_check_mode=True)

    def body() -> t.Dict[str, t.Any]:
        values = module.validate()
        state = module.params["state"]
        if state != "checked" and not values["run_id"]:
            raise ValidationError("run_id", "is required with state=%s" % state)
        import time  # pylint: disable=import-outside-toplevel

        # Its own setup, not setup_action: every wait must watch the playbook (I4) before the one Deadline is made.
        client = module.client(timeout=values["wait_timeout"])
        identity = Identity.here(values["controller"] or controller_name())
        client.sleep = identity.watching(client.sleep)  # every wait stops once the playbook is gone (I4)
        deadline = Deadline.after(values["wait_timeout"], clock=client.clock, sleep=client.sleep)
        record = MaintenanceRecord(
            CacheOperations(client, values["api_version"]),
            CacheRef(values["subscription_id"], values["resource_group"], values["cache_name"]),
            run=values["run_id"] or "check", identity=identity, hold_seconds=values["hold"],
            take_over=module.params["take_over"], local_record=module.params["local_record_dir"],
            options=ActionOptions.of(values, check_mode=module.check_mode), deadline=deadline, wall_clock=time.time)
        if state in ("checked", "held"):
            record.gate(values["allowed_states"])
        if state == "checked":
            return record.check()
        if state == "held":
            return record.hold(record.resolve(values["storage_targets"]))
        if state == "suspended":
            names = [n for n in values["storage_targets"] if n != "*"]
            return record.suspend(names or record.recorded(), module.params["flush"])
        if state == "renewed":
            return record.renew()
        names = suspended_by(module.params["suspend_results"]) + [n for n in values["storage_targets"] if n != "*"]
        return record.release(names, module.params["dns_refresh"], running_by(module.params["suspend_results"]))

    module.run(body)


if __name__ == "__main__":
    main()
