# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end of a run: resume every target recorded for it (and every one a suspend was sent to), forget each
once its resume Succeeded, then give the hold back (I1, I6)."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.target_actions import TargetAction
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import TargetRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, failure_of
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.validation import STORAGE_TARGET_NAME_RE
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import RunContext
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.hold import Hold
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.recovery import Recovery
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.stops import HoldLost, Stopped
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import TARGET_TAG, entry_value


class Release:
    """Resume, forget, give back: every resume before any cleanup, and one failed step never stops another
    target's resume (I6). While another run holds the cache, nothing is sent: that run recovers the record."""

    def __init__(self, ctx: RunContext, hold: Hold, recovery: Recovery) -> None:
        self.ctx, self.hold, self.recovery = ctx, hold, recovery

    def release(self, suspended: t.Sequence[str] = (), dns_refresh: bool = False,
                running: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, t.Any]:
        """Resume every target recorded for this run, and every name in `suspended` (the targets the run
        recorded, or a suspend was sent to, as the caller knows them: a read may show the record as it was),
        whatever it reads and whatever the suspend step reported (a killed module reports nothing); then
        forget each resumed one, then give the hold back (I1, I6). running: the operations the suspend step left
        running (running_by), each followed to its end before its target's resume. While another run holds the
        cache, this run sends nothing: that run recovers what is recorded."""
        ctx = self.ctx
        stores = ctx.stores()
        ctx.report(stores)
        spelled: t.Dict[str, str] = {}
        for name in suspended:
            spelled.setdefault(name.casefold(), name)
        if ctx.options.check_mode:  # check mode took no hold: say what would be resumed, read nothing more
            for _store, rec in stores:
                for name, run in rec.entries.items():
                    if run == ctx.run_id:
                        spelled.setdefault(name.casefold(), name)
            ctx.result["resumed"] = [{"name": spelled[folded], "outcome": "would resume", "sent": False,
                                      "msg": "check mode: it would be resumed"} for folded in sorted(spelled)]
            ctx.result["msg"] = "Check mode: the hold on %s would be given back" % ctx.ref.name
            return ctx.result
        mine = any(rec.holder is not None and rec.holder.run == ctx.run_id for _s, rec in stores)
        if not mine and (spelled or any(run == ctx.run_id for _s, rec in stores for run in rec.entries.values())
                         or any(rec.holder is not None for _s, rec in stores)):
            try:  # a read may show the tags as they were: read again (bounded) before deciding
                ctx.store_of_hold(stores)
                stores = ctx.stores()
                mine = True
            except HoldLost:
                stores = ctx.stores()
        taker = next((rec.holder for _s, rec in stores if rec.holder is not None and rec.holder.run != ctx.run_id),
                     None)
        for _store, rec in stores:
            for name, run in rec.entries.items():
                if run == ctx.run_id:
                    spelled.setdefault(name.casefold(), name)
        if taker is not None and not mine:
            raise HoldLost("The hold on %s was taken by run %s while this run worked: this run sent nothing more, "
                           "and that run resumes what this run recorded (%s)"
                           % (ctx.ref.name, taker.run, ", ".join(sorted(spelled.values())) or "nothing"),
                           record=ctx.result.get("record"), resumed=[])
        rows: t.List[t.Dict[str, t.Any]] = []
        ctx.result["resumed"] = rows
        if spelled and (not mine or not ctx.safely_ours()):
            self.hold.take()  # the hold vanished, or ran out while nobody took it: take it again first
        done: t.Set[str] = set()
        given, finished = "kept", False
        for _pass in range(5):  # resume, give back; again for entries of this run that a read behind did not show
            todo = [f for f in sorted(spelled) if f not in done]
            if not todo:
                if any(r["outcome"] not in ("resumed", "gone") for r in rows):
                    break
                given, more = self.hold.give_back(done, {r["name"].casefold() for r in rows if r.get("forget_failed")})
                finished = not more
                if finished:
                    break
                for name in more:
                    spelled.setdefault(name.casefold(), name)
                continue
            with self.hold.fenced():
                refs = [TargetRef(ctx.ref, spelled[f]) for f in todo]
                batch = [dict(name=ref.name, **row) for ref, row in zip(refs, self.recovery.resume_all(refs, running))]
                for row in batch:  # cleanup only once every resume was sent (I6)
                    if row["outcome"] == "resumed" and dns_refresh:
                        row.update(self._dns_refresh(TargetRef(ctx.ref, row["name"])))
            rows.extend(batch)
            done.update(f for f in todo)
            forgetting = True
            entries = ctx.entries_of_mine()
            for row in batch:
                if forgetting and row["outcome"] in ("resumed", "gone"):
                    for store, tag in entries.get(row["name"].casefold(), []):
                        forgetting = forgetting and self.recovery.forget(store, tag, entry_value(ctx.run_id, ctx.cache),
                                                                         row)
            for folded, _places in ctx.entries_of_mine().items():
                spelled.setdefault(folded, _places[0][1][len(TARGET_TAG):])
        if not finished and not any(r["outcome"] not in ("resumed", "gone") for r in rows):
            given, more = self.hold.give_back(done)
            rows.extend({"name": name, "outcome": "failed", "sent": False, "state_after": None,
                         "msg": "recorded for this run, but shown only late: not resumed"} for name in more)
        left = [r for r in rows if r["outcome"] not in ("resumed", "gone")]
        if left:
            raise HpcCacheError("The storage targets %s of cache %s, recorded by this run, may still be suspended: "
                                "%s. They stay recorded on the cache, and the hold stays to its bound, so the next "
                                "run resumes them first"
                                % (", ".join(r["name"] for r in left), ctx.ref.name,
                                   "; ".join("%s (it read %s): %s" % (r["name"], r.get("state_after") or "Unknown",
                                                                      r["msg"]) for r in left)),
                                resumed=rows, record=ctx.result.get("record"))
        if ctx.tags.health_state is not None:  # the last read of the cache, after every resume ended
            ctx.result["health_state_after"] = ctx.tags.health_state
        ctx.result["msg"] = "The hold on %s is %s; resumed: %s" % (
            ctx.ref.name, {"given": "given back", "kept": "kept to its bound (see the warnings)",
                           "none": "not this run's (nothing to give back)"}[given],
            ", ".join(r["name"] for r in rows if r["outcome"] == "resumed") or "none")
        return ctx.result

    def _dns_refresh(self, ref: TargetRef) -> t.Dict[str, t.Any]:
        action = TargetAction(self.ctx.ops, ref, "dns_refresh", options=self.ctx.action_options(),
                              deadline=self.ctx.deadline)
        try:
            action.run()
        except Stopped:
            raise
        except HpcCacheError as exc:
            self.ctx.result["warnings"].append("DNS refresh of %s failed: %s" % (ref.name, failure_of(exc)[0]))
            return {"dns_refresh": "failed"}
        return {"dns_refresh": "done"}


def running_by(results: t.Sequence[t.Any]) -> t.Dict[str, str]:
    """The targets whose flush or suspend the suspend step's results show still running when it ended (an
    operation it followed whose last status was neither Succeeded, Failed nor Canceled: one that outlived
    wait_timeout), each with that operation's status URL (the client reads only URLs of its ARM origin)."""
    running: t.Dict[str, str] = {}
    for result in results:
        name = _named(result)
        operations = result.get("operations") if isinstance(result, dict) else None
        if name is None or not isinstance(operations, list):
            continue
        for op in operations:
            if isinstance(op, dict) and op.get("action") in ("flush", "suspend") and \
                    isinstance(op.get("operation_url"), str) and \
                    str(op.get("status") or "").casefold() not in ("succeeded", "failed", "canceled"):
                running[name] = op["operation_url"]
    return running


def _named(result: t.Any) -> t.Optional[str]:
    """The target a storage-target task result names: by its loop variable (a registered loop's results) or by
    name; None when it names none that the API would accept."""
    if not isinstance(result, dict):
        return None
    loop_var = result.get("ansible_loop_var")
    name = result.get(loop_var) if isinstance(loop_var, str) else None
    name = name if isinstance(name, str) else result.get("name")
    return name if isinstance(name, str) and STORAGE_TARGET_NAME_RE.fullmatch(name) else None


def suspended_by(results: t.Sequence[t.Any]) -> t.List[str]:
    """The targets that storage-target task results show a suspend was sent to (answered or not).

    A result names its target by its loop variable (a registered loop's results) or by name.
    """
    names: t.List[str] = []
    for result in results:
        if not isinstance(result, dict):
            continue
        operations = result.get("operations")
        if not isinstance(operations, list) or not any(
                isinstance(op, dict) and op.get("action") == "suspend" for op in operations):
            continue
        name = _named(result)
        if name is not None and name not in names:
            names.append(name)
    return names
