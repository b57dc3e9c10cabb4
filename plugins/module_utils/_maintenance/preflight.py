# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run reads before it writes anything: the cache's health, the record (state checked), and the
storage targets asked for, in the service's spelling."""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import summarize
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.validation import STORAGE_TARGET_NAME_RE
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.context import RunContext, iso


class Preflight:
    """The health gate, the read-only check of the record, and the names: nothing is sent."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def gate(self, allowed_states: t.Sequence[str]) -> None:
        """Refuse a cache whose health state is not one of allowed_states (any case), before anything is sent.

        Backend maintenance has no state that passes whatever the list says: a Flushing, Stopped or
        Upgrading cache is refused unless listed."""
        ctx = self.ctx
        cache = summarize(ctx.ops.get(ctx.ref, ctx.deadline.at))
        state, description = cache["health_state"], cache["health_description"]
        ctx.result.update(health_state=state, health_description=description)
        if state.casefold() not in {a.strip().casefold() for a in allowed_states}:
            raise HpcCacheError(
                "Refusing backend maintenance on %s: its health state is %s%s; allowed states are %s (allowed_states). "
                "Nothing was suspended." % (ctx.ref.name, state, " (%s)" % description if description else "",
                                            ", ".join(allowed_states) or "none"),
                status="Refused", health_state=state, health_description=description)

    def check(self) -> t.Dict[str, t.Any]:
        """Read only: fail while another live run holds the cache; report an interrupted run's record."""
        ctx = self.ctx
        stores = ctx.stores()
        ctx.report(stores)
        for _store, rec in stores:
            if rec.holder is not None and ctx.judge(rec.holder) == "live":
                if not ctx.take_over:
                    ctx.refuse_live(rec.holder)
                ctx.result["warnings"].append(
                    "The cache %s is held by run %s on controller %s until %s; taken over on the operator's word "
                    "(take_over): the backend run recovers it first" % (ctx.ref.name, rec.holder.run,
                                                                        rec.holder.host or "unknown",
                                                                        iso(rec.holder.until)))
        stale = sorted({n for _s, rec in stores for n, run in rec.entries.items() if run != ctx.run_id})
        if stale:
            ctx.result["warnings"].append(
                "An interrupted maintenance run left storage targets %s recorded on the cache; the next backend "
                "maintenance run resumes them first (this run sends nothing)" % ", ".join(stale))
        ctx.result["msg"] = "The cache %s is not held by a live maintenance run%s" % (
            ctx.ref.name, "; an interrupted run's record is waiting for recovery" if stale else "")
        return ctx.result

    def resolve(self, asked: t.Sequence[str]) -> t.List[str]:
        """The storage targets asked for, in the service's spelling (ARM names are case-insensitive), once
        each; ['*'] is every target of the cache. A name the cache does not have fails, naming those it has."""
        ctx = self.ctx
        known: t.List[str] = []
        for target in ctx.ops.list_targets(ctx.ref, ctx.deadline.at):
            name = target.get("name") if isinstance(target, dict) else None
            if isinstance(name, str) and STORAGE_TARGET_NAME_RE.fullmatch(name):
                known.append(name)
        spelled = {name.casefold(): name for name in known}
        wanted = known if list(asked) == ["*"] else list(asked)
        first: t.Dict[str, str] = {}
        for name in wanted:
            first.setdefault(name.casefold(), name)  # once each, in the order asked
        names = list(first.values())
        missing = [name for name in names if name.casefold() not in spelled]
        if missing:
            raise HpcCacheError("The cache %s has no storage target %s (storage_targets); it has %s. Nothing was "
                                "suspended." % (ctx.ref.name, ", ".join(missing), ", ".join(known) or "none"))
        return [spelled[name.casefold()] for name in names]
