# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""with_emulator.py SCENARIO -- COMMAND...: run COMMAND with the emulator up and the
environment pointing at it (managed identity, cloud_environment, subscription)."""

import json
import os
import subprocess
import sys
import typing as t

from hpc_cache_emulator.__main__ import load_scenario
from hpc_cache_emulator.launcher import Emulator


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    scenario = load_scenario(sys.argv[1])
    with Emulator(scenario) as emulator:
        env = dict(os.environ, **emulator.env(scenario.get("subscription_id", "00000000-0000-0000-0000-000000000000")))
        print("Emulator of Azure Resource Manager at %s" % emulator.url, flush=True)
        code = subprocess.call(sys.argv[3:], env=env)
        state = emulator.state()
        flushes = {c["name"]: c["flushes"] for c in state["caches"]}
        print("Flushes recorded by the emulator: %s" % json.dumps(flushes, sort_keys=True), flush=True)
        # Every ARM request about a storage target (reads, actions, their status polls), and the actions each got.
        requests: t.Dict[str, t.Dict[str, int]] = {}
        for entry in state["log"]:
            if entry.get("target"):
                name = "%s/%s" % (entry["cache"], entry["target"])
                counts = requests.setdefault(name, {})
                counts[entry["method"]] = counts.get(entry["method"], 0) + 1
        for target in state["storage_targets"]:
            sent = {k: v for k, v in target["sent"].items() if v}
            if sent:
                name = "%s/%s" % (target["cache"], target["name"])
                print("Storage target %s: actions %s, ARM requests about it %s" % (
                    name, json.dumps(sent, sort_keys=True), json.dumps(requests.get(name, {}), sort_keys=True)),
                    flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
