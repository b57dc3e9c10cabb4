# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's benchmark: speed and memory on the local emulator, written as a Markdown report.

    python benchmarks/bench.py [--runs N] [--fleet 1,20,100] [--forks 20,100] [--report FILE]

Run by `make bench`. It is a measurement, not a test: it asserts nothing about time,
and exits non-zero only when it could not measure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

from hpc_cache_emulator.launcher import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUB = "00000000-0000-0000-0000-000000000000"
BIN = os.path.dirname(sys.executable)
COMMAND_TIMEOUT = 900


CLIENT, SECRET, TENANT = "bench-client", "bench-secret", "bench-tenant"


class Bench:
    def __init__(self, emulator: Emulator, workdir: str) -> None:
        self.emu = emulator
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        self.env.update(emulator.env(SUB))
        self.env["HOME"] = workdir
        if emulator.ca_bundle:  # TLS: a service principal, as AWX injects it, for us and for the peer alike
            for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
                self.env.pop(key, None)
            self.env.update(AZURE_CLIENT_ID=CLIENT, AZURE_SECRET=SECRET, AZURE_TENANT=TENANT,
                            SSL_CERT_FILE=emulator.ca_bundle,
                            # what azure.azcollection needs to resolve a custom cloud without the internet
                            ARM_CLOUD_METADATA_URL=emulator.url + "/metadata/endpoints?api-version=2022-09-01",
                            AZURE_DISABLE_INSTANCE_DISCOVERY="true")
        self.env["ANSIBLE_LOCALHOST_WARNING"] = "false"
        self.env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"

    def run(self, argv: t.Sequence[str], env: t.Optional[t.Mapping[str, str]] = None) -> t.Tuple[float, str]:
        """Wall seconds of one command, which must succeed."""
        start = time.monotonic()
        proc = subprocess.run(list(argv), env=dict(self.env, **(env or {})), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT, check=False)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv[:3]), proc.returncode, proc.stdout[-3000:]))
        return seconds, proc.stdout

    def adhoc(self, module: str, args: str = "", interpreter: str = sys.executable, python: str = sys.executable
              ) -> t.List[str]:
        """An ad-hoc task of the ansible of the given Python's environment (ours, or the peer's)."""
        return [os.path.join(os.path.dirname(python), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=%s" % interpreter, "-m", module] + (["-a", args] if args else [])

    def measured_python(self, python: str) -> str:
        """An interpreter that records the module process's peak memory (ansible wants one word)."""
        path = os.path.join(self.workdir, "measured-%d" % (abs(hash(python)) % 10000))
        with open(path, "w", encoding="utf-8") as handle:
            wrapper = os.path.join(ROOT, "benchmarks", "measure_python.py")
            handle.write('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (python, wrapper))
        os.chmod(path, 0o755)
        return path

    def peak_rss_mib(self, argv_for: t.Callable[[str], t.List[str]], python: str, runs: int = 3) -> float:
        rss_file = os.path.join(self.workdir, "rss-%d.txt" % (abs(hash(python)) % 10000))
        for _run in range(runs):
            self.run(argv_for(self.measured_python(python)), env={"BENCH_RSS_FILE": rss_file})
        with open(rss_file, encoding="utf-8") as handle:
            return max(int(line) for line in handle if line.strip()) / 1024.0


def median(values: t.Sequence[float]) -> float:
    return statistics.median(values)


OURS_ARGS = "name=c1 resource_group=rg"
PEER_ARGS = json.dumps({"url": "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1/flush"
                        % SUB, "method": "POST", "api_version": "2026-01-01", "status_code": [200, 202, 204],
                        "polling_timeout": 600, "polling_interval": 1})
OURS, PEER = "azure_hpc.cache.azure_hpc_cache_flush", "azure.azcollection.azure_rm_resource"


def measure_tasks(bench: Bench, runs: int, peer: t.Optional[str]) -> t.Dict[str, t.Any]:
    """The floor (ping), our flush task and the peer's (immediate 204), interleaved."""
    bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg", "flush": {"mode": "sync204"}}],
                    "metadata": "all", "clients": {CLIENT: SECRET}})
    commands = {"ping": bench.adhoc("ansible.builtin.ping"), "flush": bench.adhoc(OURS, OURS_ARGS)}
    if peer:
        commands["peer"] = bench.adhoc(PEER, PEER_ARGS, interpreter=peer, python=peer)
    times: t.Dict[str, t.List[float]] = {name: [] for name in commands}
    for argv in commands.values():
        bench.run(argv)  # warm the file system caches once
    for _run in range(runs):
        for name, argv in commands.items():
            times[name].append(bench.run(argv)[0])
    times["peak_rss_mib"] = bench.peak_rss_mib(lambda py: bench.adhoc(OURS, OURS_ARGS, py), sys.executable)
    if peer:
        times["peer_peak_rss_mib"] = bench.peak_rss_mib(lambda py: bench.adhoc(PEER, PEER_ARGS, py, peer), peer)
    return times


def measure_lro(bench: Bench, peer: t.Optional[str], seconds: float = 5.0) -> t.Dict[str, t.Any]:
    """A 202 flush of a few seconds with Retry-After: 1: how late each task notices the end, and its polls."""
    rows = {}
    for name, argv in (("ours", bench.adhoc(OURS, OURS_ARGS)),
                       ("peer", bench.adhoc(PEER, PEER_ARGS, interpreter=peer or "", python=peer or ""))):
        if name == "peer" and not peer:
            continue
        bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg",
                                    "flush": {"mode": "async", "duration": seconds, "retry_after": 1,
                                              "location_final": 200}}],  # the peer fails on a 204
                        "metadata": "all", "clients": {CLIENT: SECRET}})
        bench.run(argv)
        ended = time.time()  # the task's end, as the ad-hoc run returns
        log = bench.emu.log()
        post = [e["time"] for e in log if e["kind"] == "flush"][0]
        polls = [e["time"] for e in log if e["kind"] in ("operation", "location")]
        op_end = post + seconds
        rows[name] = {"polls": len(polls), "detect_delay": polls[-1] - op_end if polls else float("nan"),
                      "run_end_delay": ended - op_end}
    return {"operation_seconds": seconds, "rows": rows}


def measure_fleet(bench: Bench, sizes: t.Sequence[int], forks: t.Sequence[int],
                  flush_seconds: float = 10.0) -> t.List[t.Dict[str, t.Any]]:
    inventory = os.path.join(bench.workdir, "bench.hpc_cache.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"plugin": "azure_hpc.cache.hpc_cache"}, handle)
    rows = []
    for size in sizes:
        for fork in forks:
            if size == 1 and fork != forks[0]:
                continue
            bench.emu.load({"caches": [{"name": "cache-%03d" % i, "resource_group": "rg",
                                        "flush": {"duration": flush_seconds, "retry_after": 1}}
                                       for i in range(size)]})
            argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, "azure_hpc.cache.maintenance",
                    "--forks", str(fork), "-e", "cache_maintenance_healthy_delay=1",
                    # the role flushes from one process; its bound is max_concurrent, set like --forks
                    "-e", "cache_maintenance_max_concurrent=%d" % fork]
            seconds = bench.run(argv)[0]
            flushes = sum(c["flushes"] for c in bench.emu.state()["caches"])
            if flushes != size:
                raise RuntimeError("expected %d flushes, the emulator saw %d" % (size, flushes))
            rows.append({"caches": size, "forks": fork, "seconds": seconds})
    return rows


def measure_many(bench: Bench, size: int, flush_seconds: float = 10.0) -> t.Dict[str, t.Any]:
    """One azure_hpc_cache_flush_many task over the whole fleet: wall time and the module's peak memory."""
    bench.emu.load({"caches": [{"name": "cache-%03d" % i, "resource_group": "rg",
                                "flush": {"duration": flush_seconds, "retry_after": 1}} for i in range(size)]})
    args = json.dumps({"caches": [{"name": "cache-%03d" % i, "resource_group": "rg"} for i in range(size)],
                       "max_concurrent": min(size, 100)})
    rss_file = os.path.join(bench.workdir, "rss-many.txt")
    seconds = bench.run(bench.adhoc("azure_hpc.cache.azure_hpc_cache_flush_many", args,
                                    bench.measured_python(sys.executable)), env={"BENCH_RSS_FILE": rss_file})[0]
    flushes = sum(c["flushes"] for c in bench.emu.state()["caches"])
    if flushes != size:
        raise RuntimeError("expected %d flushes, the emulator saw %d" % (size, flushes))
    with open(rss_file, encoding="utf-8") as handle:
        peak = max(int(line) for line in handle if line.strip()) / 1024.0
    return {"caches": size, "seconds": seconds, "peak_rss_mib": peak}


# The emulator's recorded server-side durations of storage-target actions (RECORDED_TARGET_SECONDS):
# flush 8 s, suspend 1 s, resume 1 s; the cache flush below runs as recorded (204, then its operation).
TARGET_OPERATIONS = {"flush": 8.0, "suspend": 1.0, "resume": 1.0}
ROLE_FLUSH_SECONDS = 10.0


def measure_role_latency(bench: Bench) -> t.Dict[str, t.Any]:
    """The maintenance playbook with default settings, one cache: wall time against the sum of its operations'
    server-side durations, for backend maintenance of one storage target and for one cache flush."""
    inventory = os.path.join(bench.workdir, "latency.hpc_cache.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"plugin": "azure_hpc.cache.hpc_cache"}, handle)
    playbook = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, "azure_hpc.cache.maintenance"]
    rows = {}
    bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg", "storage_targets": [{"name": "filer-01"}]}]})
    seconds = bench.run(playbook + ["-e", json.dumps({"cache_maintenance_storage_targets": ["filer-01"]})])[0]
    sent = {k: v for k, v in bench.emu.target("c1", "filer-01")["sent"].items() if v}
    if sent != {"flush": 1, "suspend": 1, "resume": 1}:
        raise RuntimeError("expected one flush, suspend and resume, the emulator saw %s" % sent)
    rows["backend maintenance, one storage target (flush, suspend, resume)"] = {
        "seconds": seconds, "operations": sum(TARGET_OPERATIONS.values())}
    bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg",
                                "flush": {"mode": "recorded", "duration": ROLE_FLUSH_SECONDS}}]})
    seconds = bench.run(playbook)[0]
    if bench.emu.flushes("c1") != 1:
        raise RuntimeError("expected one flush, the emulator saw %d" % bench.emu.flushes("c1"))
    rows["cache flush"] = {"seconds": seconds, "operations": ROLE_FLUSH_SECONDS}
    return rows


def measure_auth_failure(bench: Bench) -> float:
    """auth_source=auto with no credentials at all, and the IMDS probe aimed at a closed loopback port."""
    env = dict(bench.env, PATH="/usr/bin:/bin", AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:9")
    for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        env.pop(key, None)
    start = time.monotonic()
    proc = subprocess.run(bench.adhoc("azure_hpc.cache.azure_hpc_cache_flush", "name=c1 resource_group=rg"),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)
    seconds = time.monotonic() - start
    if proc.returncode == 0 or "no Azure credentials found" not in proc.stdout:
        raise RuntimeError("expected a clear auth failure:\n" + proc.stdout[-2000:])
    return seconds


def import_cost() -> t.Tuple[float, t.List[str]]:
    src = os.path.join(ROOT, ".build", "src")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import ansible_collections.azure_hpc.cache.plugins.modules.azure_hpc_cache_flush"],
                          env=dict(os.environ, PYTHONPATH=src), stderr=subprocess.PIPE, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _self, cumulative, name = line[len("import time:"):].split("|")
            rows.append((int(cumulative), name.rstrip()))
    total = [c for c, n in rows if n.strip() == "ansible_collections.azure_hpc.cache.plugins.modules.azure_hpc_cache_flush"]
    top = ["%7.1f ms  %s" % (c / 1000.0, n) for c, n in sorted(rows, reverse=True)[:12]]
    return (total[0] / 1000.0 if total else float("nan")), top


IMPORT_RUNS = 25
BASIC = "imports `ansible.module_utils.basic` (what ping imports)"
LIBS = "also imports `azure.identity` and `requests`"
FROZEN = "also imports them, and freezes the collector before exit (as our modules do)"
FLOOR_CODE = {
    "starts and exits (`pass`)": "pass",
    BASIC: "import ansible.module_utils.basic",
    LIBS: "import ansible.module_utils.basic, azure.identity, requests",
    FROZEN: "import ansible.module_utils.basic, azure.identity, requests, gc; gc.freeze()",
}


def import_floor() -> t.Dict[str, float]:
    """CPU milliseconds (user + system) of a Python process that imports what a module needs and exits.

    CPU time rather than wall time: it is what the process costs, and it does not move with
    whatever else the machine is doing at that moment.
    """
    times: t.Dict[str, t.List[float]] = {what: [] for what in FLOOR_CODE}
    for _run in range(IMPORT_RUNS):
        for what, code in FLOOR_CODE.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], check=True, timeout=COMMAND_TIMEOUT)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times[what].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0)
    return {what: median(values) for what, values in times.items()}


def versions() -> t.Dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("ansible-core", "azure-identity", "requests", "msal"):
        try:
            from importlib.metadata import version  # pylint: disable=import-outside-toplevel

            out[name] = version(name)
        except Exception:  # pylint: disable=broad-except
            out[name] = "?"
    return out


def ratio(a: float, b: float) -> str:
    return "%.2f" % (a / b) if b else "-"


def report(data: t.Dict[str, t.Any]) -> str:
    tasks, lro = data["tasks"], data["lro"]
    ping, flush = median(tasks["ping"]), median(tasks["flush"])
    peer = median(tasks["peer"]) if "peer" in tasks else None
    lines = [
        "# azure_hpc.cache benchmark",
        "",
        "Run %s on %s (%d cores), %s." % (data["when"], platform.node() or "?", os.cpu_count() or 0, platform.platform()),
        "Versions: %s." % ", ".join("%s %s" % kv for kv in data["versions"].items()),
        "Peer: %s." % (data["peer_versions"] or "not measured (no --peer-python)"),
        "All traffic went to the local emulator (one-task and operation figures over TLS with a service",
        "principal, as AWX injects it; the fleet over plain http on loopback with managed identity).",
        "",
        "## One task (%d interleaved runs each)" % len(tasks["ping"]),
        "",
        "| what | median s | min s | max s | peak RSS of the module process |",
        "|---|---|---|---|---|",
        "| floor: `ansible localhost -m ansible.builtin.ping` | %.3f | %.3f | %.3f | |" % (
            ping, min(tasks["ping"]), max(tasks["ping"])),
        "| ours: `azure_hpc.cache.azure_hpc_cache_flush` (204) | %.3f | %.3f | %.3f | %.1f MiB |" % (
            flush, min(tasks["flush"]), max(tasks["flush"]), tasks["peak_rss_mib"]),
    ]
    if peer is not None:
        lines.append("| peer: `azure.azcollection.azure_rm_resource` POST (204) | %.3f | %.3f | %.3f | %.1f MiB |" % (
            peer, min(tasks["peer"]), max(tasks["peer"]), tasks["peer_peak_rss_mib"]))
    lines += ["", "ours / floor: **%s**; ours / peer: **%s**." % (ratio(flush, ping), ratio(flush, peer or 0)), "",
              "## Long-running operation (%.0f s, Retry-After: 1)" % lro["operation_seconds"], "",
              "| task | status requests | last status request after the end s | task end after the end s |",
              "|---|---|---|---|"]
    for name, row in lro["rows"].items():
        lines.append("| %s | %d | %.3f | %.3f |" % (name, row["polls"], row["detect_delay"], row["run_end_delay"]))
    lines += ["", "Bound for ours: operation seconds / Retry-After + 1 = %d status requests. The task's end is when"
              % int(lro["operation_seconds"] + 1),
              "the ad-hoc `ansible` command returned, so it includes the controller's own teardown.", "",
              "## Maintenance playbook (role per cache, %.0f-second flush each)" % data["fleet_flush_seconds"], "",
              "The role flushes a play batch from one module process; `--forks` and the role's",
              "`cache_maintenance_max_concurrent` are both set to the figure in the second column.", "",
              "| caches | forks = max_concurrent | wall s | / 1 cache |", "|---|---|---|---|"]
    one = [r["seconds"] for r in data["fleet"] if r["caches"] == 1]
    for row in data["fleet"]:
        versus_one = ratio(row["seconds"], one[0]) if one else "-"
        lines.append("| %d | %d | %.1f | %s |" % (row["caches"], row["forks"], row["seconds"], versus_one))
    many = data["many"]
    versus_one = ratio(many["seconds"], one[0]) if one else "-"
    lines += [
        "",
        "## One task, every cache: `azure_hpc_cache_flush_many` (%.0f-second flush each)" % data["fleet_flush_seconds"],
        "",
        "| caches | max_concurrent | wall s | / 1 cache (playbook above) | peak RSS of the module process |",
        "|---|---|---|---|---|",
        "| %d | %d | %.1f | %s | %.1f MiB |" % (
            many["caches"], min(many["caches"], 100), many["seconds"], versus_one, many["peak_rss_mib"]),
    ]
    lines += [
        "",
        "## The maintenance role with default settings, one cache",
        "",
        "Wall time of `ansible-playbook ... azure_hpc.cache.maintenance` against the sum of the server-side",
        "durations of its operations (the emulator's recorded ones). The rest is Ansible's start-up, the",
        "reads before and after, the modules' polling (`cache_maintenance_poll_interval`, default 10 s) and",
        "any wait to see a module's end.",
        "",
        "| run | wall s | operations s | wall - operations s |",
        "|---|---|---|---|",
    ] + ["| %s | %.1f | %.1f | %.1f |" % (name, row["seconds"], row["operations"], row["seconds"] - row["operations"])
         for name, row in data["role"].items()]
    lines += [
        "",
        "## auth_source=auto with no credentials",
        "",
        "Fails clearly in **%.2f s** (whole ad-hoc task; the instance-metadata probe is bounded at 0.5 s)." % data["auth"],
        "",
        "## What any module that needs azure-identity and requests pays (%d runs each, median)" % IMPORT_RUNS,
        "",
        "| Python process that | CPU ms |",
        "|---|---|",
    ] + ["| %s | %.1f |" % (what, ms) for what, ms in data["import_floor"].items()] + [
        "",
        "The collection's libraries cost **%.1f ms** of CPU more than the ping module's own imports"
        % (data["import_floor"][FROZEN] - data["import_floor"][BASIC]),
        "(%.1f ms without the freeze); on top of the ping floor that alone is **%s** of it, before any"
        % (data["import_floor"][LIBS] - data["import_floor"][BASIC],
           ratio(ping + (data["import_floor"][FROZEN] - data["import_floor"][BASIC]) / 1000.0, ping)),
        "token, any request or any line of ours.",
        "",
        "## Import cost of the flush module (`python -X importtime`): %.1f ms" % data["import_ms"],
        "",
        "```",
    ] + data["import_top"] + ["```", ""]
    return "\n".join(lines)


def peer_versions(peer: t.Optional[str]) -> t.Optional[str]:
    if not peer:
        return None
    code = ("from importlib.metadata import version as v; import json, os, ansible_collections.azure.azcollection as c;"
            "m = json.load(open(os.path.join(list(c.__path__)[0], 'MANIFEST.json')));"
            "print('ansible %s, ansible-core %s, azure.azcollection %s, azure-identity %s' % (v('ansible'), "
            "v('ansible-core'), m['collection_info']['version'], v('azure-identity')))")
    return subprocess.run([peer, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--fleet", default="1,20,100")
    parser.add_argument("--forks", default="20,100")
    parser.add_argument("--flush-seconds", type=float, default=10.0)
    parser.add_argument("--peer-python", help="Python of a venv with the ansible package and azure.azcollection's "
                                              "requirements, to measure azure_rm_resource")
    parser.add_argument("--report", default=os.path.join(ROOT, "bench-report.md"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.fleet.split(",") if x]
    forks = [int(x) for x in args.forks.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="hpc-cache-bench-") as workdir, \
            Emulator(tls=True) as tls_emu, Emulator() as emu:
        try:
            data = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "versions": versions(), "peer_versions": peer_versions(args.peer_python),
                    "fleet_flush_seconds": args.flush_seconds}
            tls = Bench(tls_emu, workdir)
            data["tasks"] = measure_tasks(tls, args.runs, args.peer_python)
            data["lro"] = measure_lro(tls, args.peer_python)
            plain = Bench(emu, workdir)
            data["auth"] = measure_auth_failure(plain)
            data["import_ms"], data["import_top"] = import_cost()
            data["import_floor"] = import_floor()
            data["role"] = measure_role_latency(plain)
            data["fleet"] = measure_fleet(plain, sizes, forks, args.flush_seconds)
            data["many"] = measure_many(plain, max(sizes), args.flush_seconds)
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as exc:
            print("bench: could not measure: %s" % exc, file=sys.stderr)
            return 1
    text = report(data)
    with open(args.report, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    print("report written to %s" % args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
