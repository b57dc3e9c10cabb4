# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end harness: the emulator as a real HTTP server and real ansible-playbook runs.

The collection under test is the one installed in ANSIBLE_COLLECTIONS_PATH
(the Makefile builds and installs the tarball there first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest
from hpc_cache_emulator.launcher import Emulator

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SUB = "00000000-0000-0000-0000-000000000000"
PLAYBOOK_TIMEOUT = 300
# Variables a job may inherit from the developer's shell that would change what is tested.
SCRUB = ("AZURE_", "IDENTITY_", "MSI_", "REQUESTS_CA_BUNDLE", "ANSIBLE_DEBUG", "ANSIBLE_VERBOSITY")


def pytest_configure(config: pytest.Config) -> None:
    # make test-e2e runs every test on the newest stack; make test-e2e-oldest deselects these on the oldest
    config.addinivalue_line(
        "markers", "stack_independent: what the test shows is decided by the emulator or by the collection's own "
        "Python (HTTP, the poller, the record's protocol), the same on every ansible-core the collection admits: "
        "only the newest stack runs it. Whatever ansible-core takes part in (module and action plugin runs, check "
        "mode, no_log, the role's blocks, tags and strategies, signals, a canceled job) runs on both stacks.")


@pytest.fixture(scope="session")
def emulator() -> t.Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def tls_emulator() -> t.Iterator[Emulator]:
    with Emulator(tls=True) as emu:
        yield emu


@pytest.fixture(scope="session")
def foreign() -> t.Iterator[Emulator]:
    """A second server: another origin, to which no token may ever go."""
    with Emulator() as emu:
        yield emu


class Run:
    def __init__(self, rc: int, results: t.List[t.Dict[str, t.Any]], output: str) -> None:
        self.rc = rc
        self.results = results
        self.output = output

    @property
    def result(self) -> t.Dict[str, t.Any]:
        return self.results[0]


class Runner:
    def __init__(self, tmp_path: str, emu: Emulator) -> None:
        self.tmp = tmp_path
        self.emu = emu
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
        self.env.update(emu.env(SUB))
        self.env["HOME"] = tmp_path  # no ~/.azure/credentials of the developer's
        self.env["ANSIBLE_LOCALHOST_WARNING"] = "false"
        self.env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"

    def play(self, tasks: t.List[t.Dict[str, t.Any]], args: t.Sequence[str] = (),
             env: t.Optional[t.Mapping[str, t.Optional[str]]] = None) -> Run:
        """Run the tasks, each registered and written out, whatever it did."""
        out = os.path.join(self.tmp, "results.json")
        steps = []
        for i, task in enumerate(tasks):
            steps.append(dict(task, register="r%d" % i, ignore_errors=True))
        steps.append({"name": "Write results", "check_mode": False, "ansible.builtin.copy": {
            "dest": out, "content": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))}})
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": steps}]
        path = os.path.join(self.tmp, "play.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(play, handle)
        inventory = os.path.join(self.tmp, "inventory.ini")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        proc = self.command("ansible-playbook", ["-i", inventory, path] + list(args), env=env)
        results = []
        if os.path.exists(out):
            with open(out, encoding="utf-8") as handle:
                results = json.load(handle)
            os.unlink(out)
        return Run(proc.returncode, results, proc.stdout)

    python = sys.executable

    @staticmethod
    def tool(name: str) -> str:
        return os.path.join(os.path.dirname(sys.executable), name)

    def command(self, tool: str, argv: t.Sequence[str], env: t.Optional[t.Mapping[str, t.Optional[str]]] = None
                ) -> subprocess.CompletedProcess:
        """Run an ansible tool of this Python's environment (ansible-playbook, ansible-inventory...)."""
        run_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                run_env.pop(key, None)
            else:
                run_env[key] = value
        return subprocess.run([self.tool(tool)] + list(argv), env=run_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=PLAYBOOK_TIMEOUT, check=False)

    def inventory_file(self, config: t.Mapping[str, t.Any]) -> str:
        path = os.path.join(self.tmp, "caches.hpc_cache.yml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(dict({"plugin": "azure_hpc.cache.hpc_cache"}, **config), handle)
        return path

    def flush(self, module_args: t.Optional[t.Mapping[str, t.Any]] = None, args: t.Sequence[str] = (),
              env: t.Optional[t.Mapping[str, t.Optional[str]]] = None) -> Run:
        """One flush task of cache c1 in rg; module_args override, args go to ansible-playbook."""
        task_args = {"name": "c1", "resource_group": "rg", "poll_interval": 1}
        task_args.update(module_args or {})
        return self.play([{"azure_hpc.cache.azure_hpc_cache_flush": task_args}], args=args, env=env)


@pytest.fixture
def runner(tmp_path: t.Any, emulator: Emulator) -> Runner:
    return Runner(str(tmp_path), emulator)


# The recorded durations (a storage-target flush 8 s, a suspend or resume 1 s), a quarter as long: a test that
# needs an action to last gives its duration (which is not scaled), or a time_scale of its own.
TIME_SCALE = 0.25


def scenario(**cache: t.Any) -> t.Dict[str, t.Any]:
    """One cache c1 in rg, with the given settings (time_scale: TIME_SCALE unless given)."""
    spec = {"name": "c1", "resource_group": "rg"}
    faults = cache.pop("faults", [])
    cache.setdefault("time_scale", TIME_SCALE)
    top = {k: cache.pop(k) for k in ("token_lifetime", "metadata", "clients", "users", "time_scale") if k in cache}
    spec.update(cache)
    return dict({"caches": [spec], "faults": faults}, **top)


def requests_of(emu: Emulator, kind: t.Optional[str] = None, method: t.Optional[str] = None) -> t.List[t.Dict[str, t.Any]]:
    return [e for e in emu.log() if (kind is None or e["kind"] == kind) and (method is None or e["method"] == method)]


def maintenance(runner: Runner, inventory: str, *args: str,
                env: t.Optional[t.Mapping[str, t.Optional[str]]] = None) -> subprocess.CompletedProcess:
    """The maintenance playbook over an inventory, with short waits, and no progress lines (tested on their own)."""
    return runner.command("ansible-playbook", ["-i", inventory, "azure_hpc.cache.maintenance",
                                               "-e", "cache_maintenance_poll_interval=1",
                                               "-e", "cache_maintenance_healthy_delay=1",
                                               "-e", "cache_maintenance_progress_interval=0",
                                               ] + list(args), env=env)


def fleet(n=3, **flush):
    caches = [{"name": "cache-%02d" % i, "resource_group": "rg-a" if i % 2 else "rg-b",
               "location": "eastus" if i % 2 else "westeurope", "tags": {"env": "prod" if i < 2 else "dev"},
               "flush": dict({"duration": 1, "retry_after": 1}, **flush)} for i in range(n)]
    return {"caches": caches, "page_size": 2}


def unwrap(value):
    """ansible-inventory marks plugin-provided strings as unsafe in its JSON ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def inventory_list(runner, inventory, env=None):
    listed = runner.command("ansible-inventory", ["-i", inventory, "--list"], env=env)
    assert listed.returncode == 0, listed.stdout
    return unwrap(json.loads(listed.stdout))


def recap(stdout):
    """PLAY RECAP counters per host: {'cache-00': {'ok': 5, 'failed': 0, ...}}."""
    hosts = {}
    for line in stdout.split("PLAY RECAP", 1)[1].splitlines():
        if ":" in line and "=" in line:
            host, counters = line.split(":", 1)
            hosts[host.strip()] = {k: int(v) for k, v in (pair.split("=") for pair in counters.split())}
    return hosts
