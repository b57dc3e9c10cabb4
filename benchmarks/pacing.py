# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet larger than the service's flush budget, on the local emulator: how many answers were 429, how long.

    PYTHONPATH=.build/src:emulator python benchmarks/pacing.py [--caches 16] [--limit 5] [--window 20]
                                                               [--max-concurrent 20] [--no-pacing]

Runs flush_many's task (_fleet.FleetFlush, as azure_hpc_cache_flush_many runs it, without Ansible) over
--caches caches of one subscription against a throttle of --limit flushes per --window seconds (the
emulator's fixed window, refilled whole), then prints the flushes per cache, the 429s the emulator
answered, the wall time and the minimum the budget allows: the last of ceil(caches / limit) windows
opens (ceil - 1) x window after the first POST. --no-pacing runs every flush retrying on its own
(the collection before pacing), for comparison. It measures; it asserts nothing, and exits non-zero
only when a flush failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from hpc_cache_emulator.launcher import Emulator

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.connect import connect
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import load_settings
from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.options import ActionOptions
from ansible_collections.azure_hpc.cache.plugins.module_utils._fleet.flush_many import FleetFlush, FleetItem
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import (
    DEFAULT_API_VERSION,
    CacheOperations,
    CacheRef,
)

SUB = "00000000-0000-0000-0000-000000000000"


def measure(caches: int, limit: int, window: float, max_concurrent: int, pacing: bool, duration: float) -> dict:
    names = ["c%02d" % i for i in range(caches)]
    scenario = {"caches": [{"name": n, "resource_group": "rg", "flush": {"duration": duration}} for n in names],
                "throttle": {"flush": {"limit": limit, "window": window}}}
    with Emulator(scenario) as emu:
        os.environ.update(emu.env(SUB))  # the credential reads it when it asks for a token
        client = connect(load_settings({"cloud_environment": emu.url, "subscription_id": SUB}), timeout=600, concurrency=min(max_concurrent, caches))
        client.tokens.token()
        items = [FleetItem(n, CacheRef(SUB, "rg", n)) for n in names]
        fleet = FleetFlush(CacheOperations(client, DEFAULT_API_VERSION), items,
                           options=ActionOptions(wait=True, wait_timeout=600, poll_interval=1, check_mode=False),
                           max_concurrent=max_concurrent, pacing=pacing)
        start = time.monotonic()
        results = fleet.run()
        elapsed = time.monotonic() - start
        posts = [e for e in emu.log() if e.get("method") == "POST" and e.get("kind") != "token"]
        flushes = {c["name"]: c["flushes"] for c in emu.state()["caches"]}
        throttled = emu.throttled("FlushCache5Min")
    windows = math.ceil(caches / limit) if limit else 0
    minimum = (windows - 1) * window if windows else 0.0
    return {"caches": caches, "limit": limit, "window": window, "max_concurrent": max_concurrent, "pacing": pacing,
            "flushed_once": sum(1 for n in names if flushes.get(n) == 1), "failed": sum(1 for r in results if r["failed"]),
            "posts": len(posts), "answered_429": throttled, "elapsed": round(elapsed, 1),
            "minimum": minimum, "over_minimum": round(elapsed - minimum, 1),
            "statuses": sorted({r.get("status", "?") for r in results}),
            "msgs": sorted({r["msg"] for r in results if r["failed"]})[:3]}


def main() -> int:
    for key in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        del os.environ[key]  # only the emulator's managed identity
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--caches", type=int, default=16)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=20)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds each flush runs in the emulator")
    parser.add_argument("--no-pacing", action="store_true")
    args = parser.parse_args()
    figures = measure(args.caches, args.limit, args.window, args.max_concurrent, not args.no_pacing, args.duration)
    print(json.dumps(figures, indent=1))
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
