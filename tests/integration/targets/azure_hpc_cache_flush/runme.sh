#!/usr/bin/env bash
# azure_hpc_cache_flush against the local ARM emulator: start it on 127.0.0.1 (the environment of a
# managed-identity job pointed at it), run flush.yml, stop it. The emulator is the repository's own
# tooling, importable where the collection's venvs install it (a .pth file); nothing leaves loopback.
set -eux
# The playbook's timeout bounds the run: the emulator stops whatever happens.
PLAYBOOK_TIMEOUT=${PLAYBOOK_TIMEOUT:-300}
python - "$PLAYBOOK_TIMEOUT" "$@" <<'PY'
import os
import subprocess
import sys

from hpc_cache_emulator.__main__ import load_scenario
from hpc_cache_emulator.launcher import Emulator

scenario = load_scenario("scenario.yml")
with Emulator(scenario) as emulator:
    env = dict(os.environ, **emulator.env(scenario["subscription_id"]))
    env.pop("REQUESTS_CA_BUNDLE", None)
    command = ["ansible-playbook", "-i", "inventory.ini", "flush.yml"] + sys.argv[2:]
    sys.exit(subprocess.call(command, env=env, timeout=float(sys.argv[1])))
PY
