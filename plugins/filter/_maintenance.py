# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache_maintenance role's decisions, in Python: internal to the role, not part of the collection's
public interface (its steps, their values and what they return change with the role, in any release).

The role's YAML says what runs in what order; this says what it means. The role calls one filter,

    {{ {'name': value, ...} | azure_hpc.cache._maintenance('step') }}

with a mapping of named values (what the role's inputs and the modules returned; an unknown or missing
name fails the task), and sets the answer once (set_fact), so it does not change as the play goes on:

- plan: which path (a flush of the whole cache, or backend maintenance on storage targets), whether the
  cache is read before the flush, how often its health is read after;
- batch: the caches of the play batch for the one flush_many run;
- batch_entry: this host's entry of that run's result;
- upgrade_ready: whether the software upgrade runs after the flush;
- needs_healthy: whether the post step waits for the cache to read Healthy;
- target_rows: one row per storage target, for the summary, from what the record module returned;
- result: this host's result (outcome, states, seconds, message, the rows);
- summary: every host's result, and the lines the summary shows.

Only the modules' own words are read: a flush is "flushed" only on the module's Succeeded, which it gives only
when the service says the flush is over. No step reads a variable by name: the role passes the values.
"""

from __future__ import annotations

import inspect
import typing as t
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

# A host's outcome from the flush module's status, and whether the cache was already flushing.
FLUSH_OUTCOMES = {
    ("Skipped", False): "skipped",
    ("Skipped", True): "skipped",
    ("InProgress", False): "started",
    ("InProgress", True): "still flushing",
    ("Succeeded", False): "flushed",
    ("Succeeded", True): "attached",
}
FAILED_OUTCOMES = ("failed", "refused")


def _ran(result: t.Any) -> t.Dict[str, t.Any]:
    """A registered result as a dict, or {} when its task did not run (absent, skipped, not a dict)."""
    if not isinstance(result, t.Mapping) or result.get("skipped"):
        return {}
    return dict(result)


def _folded(value: t.Any) -> str:
    return str(value or "").strip().casefold()


def _seconds(value: t.Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _list(value: t.Any) -> t.List[t.Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def maintenance_plan(*, storage_targets: t.Any, pre_tasks: t.Any = (), run_tags: t.Any = (), skip_tags: t.Any = (),
                     healthy_timeout: t.Any = 600, healthy_delay: t.Any = 10) -> t.Dict[str, t.Any]:
    """The run's path and reads, from the role's inputs and the run's tags.

    The flush module checks the health state itself in the read it needs anyway, and so does the record
    module's state=held (with the check that no other run holds the cache), so the cache is read before
    the maintenance only when something happens between the check and it (pre-maintenance task files),
    or when the maintenance does not run (--tags pre, --skip-tags flush).
    """
    backend = bool(storage_targets)
    run_tags, skip_tags = list(run_tags or ()), list(skip_tags or ())
    flush_runs = "flush" not in skip_tags and ("all" in run_tags or "flush" in run_tags)
    delay = max(int(healthy_delay), 1)
    return {
        "backend": backend,
        "read_before": bool(pre_tasks) or not flush_runs,
        "healthy_delay": delay,
        "healthy_retries": max(int(healthy_timeout) // delay, 1),
    }


def maintenance_batch(*, item: t.Any, items: t.Any = None, batch: t.Any = True) -> t.List[t.Any]:
    """The caches the one flush_many run of the batch flushes: the item of every host of the batch that named
    its cache, in the batch's order (hosts refused or failed earlier named none), or this host's alone when the
    role does not batch."""
    if not batch or items is None:
        return [item] if item else []
    return [cache for cache in _list(items) if isinstance(cache, t.Mapping) and cache]


def maintenance_batch_entry(*, flush_all: t.Any, label: str) -> t.Dict[str, t.Any]:
    """This host's entry of the batch flush's result (by its label); when the module itself failed (no token,
    bad input) and gave no entry, a failure carrying the module's message; {} when the flush did not run."""
    result = _ran(flush_all)
    if not result:
        return {}
    for entry in result.get("caches") or ():
        if isinstance(entry, t.Mapping) and entry.get("label") == label:
            return dict(entry)
    return {"failed": True, "msg": result.get("msg") or "The flush task returned no result"}


def _suspend_ran(suspend: t.Any) -> bool:
    """The suspend step ran: the record module's state=suspended (its targets), or skipped with nothing to
    suspend; a registered loop of storage-target tasks (its results, empty when there was nothing to do)."""
    if not isinstance(suspend, t.Mapping):
        return False
    return suspend.get("targets") is not None or suspend.get("results") is not None or suspend.get("skipped") is True


def _refused(*results: t.Mapping[str, t.Any]) -> bool:
    return any(r.get("status") == "Refused" for r in results)


def _outcome(backend: bool, check_mode: bool, failed: bool, refused: bool,
             checked: t.Mapping[str, t.Any], flush: t.Mapping[str, t.Any], suspended: bool) -> str:
    if failed:
        return "refused" if refused else "failed"
    if backend and suspended:
        return "would maintain storage targets" if check_mode else "storage targets maintained"
    if not flush:
        return "checked" if checked else "not flushed"
    if check_mode and flush.get("changed"):
        return "would flush"
    attached = _folded(flush.get("health_state")) == "flushing"
    return FLUSH_OUTCOMES.get((str(flush.get("status") or ""), attached), "unknown")


def _loop_name(result: t.Any) -> t.Optional[str]:
    if not isinstance(result, t.Mapping):
        return None
    loop_var = result.get("ansible_loop_var")
    name = result.get(loop_var) if isinstance(loop_var, str) else result.get("name")
    return name if isinstance(name, str) else None


def target_rows(suspend_results: t.Sequence[t.Any], skipped: t.Sequence[t.Any], resumed: t.Sequence[t.Any],
                recovered: t.Sequence[t.Any], check_mode: bool,
                flush_results: t.Sequence[t.Any] = ()) -> t.List[t.Dict[str, t.Any]]:
    """One summary line per storage target: what an interrupted run's recovery did, what was sent to each
    target of this run and what it read after, and what was left to its owner."""
    rows: t.List[t.Dict[str, t.Any]] = []
    for item in recovered:
        if isinstance(item, t.Mapping):
            rows.append({"name": item.get("name"), "state_before": item.get("state_before", "Unknown"),
                         "state_after": item.get("state_after"), "seconds": item.get("seconds", 0.0),
                         "done": "recovered from interrupted run %s: %s (%s)" % (item.get("run"), item.get("outcome"),
                                                                                 item.get("msg"))})
    flushed = {(_loop_name(r) or "").casefold(): r for r in flush_results
               if isinstance(r, t.Mapping) and not r.get("skipped")}
    back = {str(r.get("name", "")).casefold(): r for r in resumed if isinstance(r, t.Mapping)}
    for result in suspend_results:
        name = _loop_name(result)
        if name is None:
            continue
        flush = flushed.get(name.casefold(), {})
        sent = [str(op.get("action")) for res in (flush, result) for op in res.get("operations") or []
                if isinstance(op, t.Mapping)]
        release = back.pop(name.casefold(), {})
        if release.get("sent"):
            sent.append("resume")
        if release.get("dns_refresh") == "done":
            sent.append("dns_refresh")
        failures = [str(m) for m in (flush.get("msg") if flush.get("failed") else None,
                                     result.get("msg") if result.get("failed") else None,
                                     release.get("msg") if release.get("outcome") == "failed" else None) if m]
        if check_mode:
            done = "would be %ssuspended and resumed" % ("flushed, " if flush or result.get("flush") else "")
        else:
            done = (", ".join(sent) or "nothing sent") + (" (failed: %s)" % "; ".join(failures) if failures else "")
        seconds = sum(float(r.get("elapsed") or r.get("seconds") or 0.0) for r in (flush, result, release))
        rows.append({"name": name, "state_before": flush.get("state_before") or result.get("state_before", "Unknown"),
                     "state_after": release.get("state_after") or result.get("state_after"),
                     "seconds": round(seconds, 1), "done": done})
    for name, release in sorted(back.items()):
        rows.append({"name": release.get("name"), "state_before": "Unknown", "state_after": release.get("state_after"),
                     "seconds": float(release.get("seconds") or 0.0), "done": str(release.get("msg"))})
    for item in skipped:
        if isinstance(item, t.Mapping):
            rows.append({"name": item.get("name"), "state_before": item.get("state"), "state_after": item.get("state"),
                         "seconds": 0.0, "done": "left %s: %s" % (str(item.get("state", "")).lower(), item.get("why"))})
    return rows


def maintenance_target_rows(*, held: t.Any = None, suspend: t.Any = None, released: t.Any = None,
                            check_mode: bool = False) -> t.List[t.Dict[str, t.Any]]:
    """The rows of a backend run, from what the record module returned: the hold (not_ours, recovered), the
    suspend step (targets) and the release (resumed, failed or not). None until the release ran, and none when
    it failed before it released anything (no ``resumed``: a connection or configuration error, a killed task),
    as the record module gave none then."""
    released = _ran(released)
    if not released or (released.get("failed") and "resumed" not in released):
        return []
    held, suspend = _ran(held), _ran(suspend)
    return target_rows(_list(suspend.get("targets")), _list(held.get("not_ours")), _list(released.get("resumed")),
                       _list(held.get("recovered")), bool(check_mode))


def maintenance_result(*, name: str, resource_group: str = "", backend: bool = False, check_mode: bool = False,
                       checked: t.Any = None, flush: t.Any = None, held: t.Any = None, suspend: t.Any = None,
                       storage_targets: t.Any = None, after: t.Any = None, released: t.Any = None,
                       failure: t.Any = None,
                       upgrade: t.Any = None, upgrade_asked: str = "never", run: t.Any = None) -> t.Dict[str, t.Any]:
    """This host's result, from what each step returned (a step that did not run is None or skipped).

    checked: the read before maintenance (the flush module in check mode, or the record module's
    state=checked), or a list of such reads, the first that ran counting; flush: this host's entry of the batch
    flush; held, suspend: the backend path's hold and suspend step; storage_targets: the rows (target_rows);
    after: the read after maintenance (skipped when the release's own last read showed the cache Healthy:
    released); failure: the failed task's result, when a task failed; upgrade: the
    software upgrade after the flush; run: what this run of the role is (role_uuid: one per play, the same in
    every serial batch), stamped on the result.
    """
    if isinstance(checked, (list, tuple)):  # one read per path: the first that ran
        checked = next((c for c in checked if _ran(c)), None)
    checked, flush, held, after = _ran(checked), _ran(flush), _ran(held), _ran(after)
    upgraded = _ran(upgrade)
    failed = isinstance(failure, t.Mapping)
    failure = dict(failure) if isinstance(failure, t.Mapping) else {}
    # An empty loop registers skipped with empty results: the suspend step still ran.
    suspended = _suspend_ran(suspend)
    refused = _refused(failure, checked, flush, held)
    before = next((r.get("health_state") for r in (checked, held, failure, flush) if r.get("health_state")), "Unknown")
    caches = after.get("caches") or []
    state_after = caches[0].get("health_state") if caches and isinstance(caches[0], t.Mapping) else (
        _ran(released).get("health_state_after") or upgraded.get("health_state_after")
        or (None if upgraded.get("failed") else flush.get("health_state_after")))
    rows = _list(storage_targets)
    if flush:
        seconds = _seconds(flush.get("elapsed"))
    else:
        # the targets of a run go together (each row's seconds overlap the others'): the longest row
        seconds = round(float(max([_seconds(r.get("seconds")) for r in rows if isinstance(r, t.Mapping)] or [0.0])), 1)
    url = str(flush.get("operation_url") or "")
    msg = str(failure.get("msg") or "failed") if failed else str(flush.get("msg") or "")
    if failed and upgraded.get("failed") and flush.get("status") == "Succeeded":
        msg = "flushed; the software upgrade failed: %s" % msg  # the flush itself was done
    return {
        "cache": name,
        "run": run,
        "resource_group": resource_group,
        "state_before": before,
        "state_after": state_after,
        "outcome": _outcome(bool(backend), bool(check_mode), failed, refused, checked, flush, suspended),
        "seconds": seconds,
        "operation_id": urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] if url else "",
        "msg": msg,
        "storage_targets": rows,
        "upgrade": _upgrade_of(upgraded, check_mode=bool(check_mode)) or (
            {"done": "not attempted (the flush is not over)"}
            if str(upgrade_asked) == "if_available" and flush and not failed else None),
    }


def _upgrade_of(upgrade: t.Mapping[str, t.Any], check_mode: bool) -> t.Optional[t.Dict[str, t.Any]]:
    """What the software upgrade after the flush did, from the upgrade module's own words; None when it did
    not run."""
    if not upgrade:
        return None
    status = str(upgrade.get("status") or "")
    before, after = upgrade.get("firmware_before"), upgrade.get("firmware_after")
    if upgrade.get("failed"):
        done = "failed"
    elif status == "Skipped":
        done = "no upgrade pending"
    elif check_mode and upgrade.get("changed"):
        done = "would upgrade"
    elif status == "Succeeded" and before is not None and before == after:
        done = "unconfirmed (the software version did not change)"  # accepted on the operation's word only
    elif status == "Succeeded" and upgrade.get("changed"):
        done = "upgraded"
    elif status == "Succeeded":
        done = "upgraded (found running)"
    elif status == "InProgress":
        done = "upgrade started"
    else:
        done = "unknown"
    return {"done": done, "firmware_before": before, "firmware_after": after,
            "firmware_update_deadline": upgrade.get("firmware_update_deadline")}


def maintenance_upgrade_ready(*, flush: t.Any, upgrade: t.Any = "never") -> bool:
    """Whether the software upgrade runs after the flush: asked for (if_available), and only once the flush is
    over (Succeeded: flushed or attached to). A cache whose flush did not finish, was skipped (stopped) or
    failed gets no upgrade."""
    return str(upgrade) == "if_available" and _ran(flush).get("status") == "Succeeded"


def maintenance_needs_healthy(*, flush: t.Any = None, suspend: t.Any = None, released: t.Any = None,
                              backend: bool = False, check_mode: bool = False) -> bool:
    """Whether the post step waits for the cache to read Healthy: after backend maintenance that suspended, unless
    the release's last read of the cache (after every resume ended) showed it Healthy; after a flush the service
    said is over while the cache did not read Healthy yet. Never in check mode."""
    if check_mode:
        return False
    if backend:
        return _suspend_ran(suspend) and _folded(_ran(released).get("health_state_after")) != "healthy"
    flush = _ran(flush)
    return flush.get("status") == "Succeeded" and _folded(flush.get("health_state_after")) != "healthy"


def _cache_line(result: t.Mapping[str, t.Any]) -> str:
    operation = ", operation %s" % result["operation_id"] if result.get("operation_id") else ""
    upgrade = result.get("upgrade")
    if isinstance(upgrade, t.Mapping):
        operation += ", software %s: %s -> %s" % (upgrade.get("done"), upgrade.get("firmware_before") or "?",
                                                  upgrade.get("firmware_after") or "?")
    why = ": %s" % result.get("msg") if result.get("outcome") in FAILED_OUTCOMES else ""
    return "%s: %s (state %s -> %s, %s s%s)%s" % (
        result.get("cache"), result.get("outcome"), result.get("state_before"), result.get("state_after") or "-",
        result.get("seconds"), operation, why)


def _target_line(cache: t.Any, row: t.Mapping[str, t.Any]) -> str:
    return "%s storage target %s: %s (state %s -> %s, %s s)" % (
        cache, row.get("name"), row.get("done"), row.get("state_before"), row.get("state_after") or "-",
        row.get("seconds"))


def maintenance_summary(*, results: t.Any, run: t.Any = None) -> t.Dict[str, t.Any]:
    """Every host's result of this run (results: each host's, in the play's host order; a host without one
    gives none or {}), and the summary's lines: one per cache, then one per storage target of each.

    Facts outlive a play: a host that has not run the role in this play (a later serial batch, a host that
    failed before the role) may carry an earlier play's result. With run (role_uuid), only results stamped
    with it count."""
    caches = [dict(r) for r in _list(results)
              if isinstance(r, t.Mapping) and r and (run is None or r.get("run") == run)]
    lines = [{"label": c.get("cache"), "msg": _cache_line(c)} for c in caches]
    for cache in caches:
        for row in cache.get("storage_targets") or ():
            if isinstance(row, t.Mapping):
                lines.append({"label": "%s/%s" % (cache.get("cache"), row.get("name")),
                              "msg": _target_line(cache.get("cache"), row)})
    return {"caches": caches, "lines": lines}


STEPS: t.Dict[str, t.Callable[..., t.Any]] = {
    "plan": maintenance_plan,
    "batch": maintenance_batch,
    "batch_entry": maintenance_batch_entry,
    "upgrade_ready": maintenance_upgrade_ready,
    "needs_healthy": maintenance_needs_healthy,
    "target_rows": maintenance_target_rows,
    "result": maintenance_result,
    "summary": maintenance_summary,
}


def maintenance(values: t.Any, step: str) -> t.Any:
    """The role's one entry point: the decision of `step`, from a mapping of its named values."""
    decide = STEPS.get(step)
    if decide is None:
        raise AnsibleFilterError("_maintenance: unknown step %r (one of %s)" % (step, ", ".join(STEPS)))
    if not isinstance(values, t.Mapping):
        raise AnsibleFilterError("_maintenance(%s): the input must be a mapping of named values, not %s"
                                 % (step, type(values).__name__))
    values = {str(k): v for k, v in values.items()}
    try:
        inspect.signature(decide).bind(**values)
    except TypeError as exc:
        raise AnsibleFilterError("_maintenance(%s): %s" % (step, exc)) from None
    return decide(**values)


class FilterModule:
    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {"_maintenance": maintenance}
