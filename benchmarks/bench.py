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
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "emulator"))

from hpc_cache_emulator.launcher import Emulator  # noqa: E402  pylint: disable=wrong-import-position

SUB = "00000000-0000-0000-0000-000000000000"
BIN = os.path.dirname(sys.executable)
COMMAND_TIMEOUT = 900


class Bench:
    def __init__(self, emulator: Emulator, workdir: str) -> None:
        self.emu = emulator
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        self.env.update(emulator.env(SUB))
        self.env["HOME"] = workdir
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

    def adhoc(self, module: str, args: str = "", interpreter: str = sys.executable) -> t.List[str]:
        return [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=%s" % interpreter, "-m", module] + (["-a", args] if args else [])


def median(values: t.Sequence[float]) -> float:
    return statistics.median(values)


def measure_tasks(bench: Bench, runs: int) -> t.Dict[str, t.Any]:
    """The floor (ping) and our flush task (immediate 204), interleaved."""
    bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg", "flush": {"mode": "sync204"}}]})
    ping, flush = [], []
    flush_cmd = bench.adhoc("azure_hpc.cache.azure_hpc_cache_flush", "name=c1 resource_group=rg")
    bench.run(flush_cmd)  # warm the caches of the file system once
    for _run in range(runs):
        ping.append(bench.run(bench.adhoc("ansible.builtin.ping"))[0])
        flush.append(bench.run(flush_cmd)[0])
    rss_file = os.path.join(bench.workdir, "rss.txt")
    interpreter = os.path.join(bench.workdir, "measured-python")
    with open(interpreter, "w", encoding="utf-8") as handle:  # ansible quotes the interpreter: one word only
        wrapper = os.path.join(ROOT, "benchmarks", "measure_python.py")
        handle.write('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, wrapper))
    os.chmod(interpreter, 0o755)
    for _run in range(3):
        bench.run(bench.adhoc("azure_hpc.cache.azure_hpc_cache_flush", "name=c1 resource_group=rg", interpreter),
                  env={"BENCH_RSS_FILE": rss_file})
    with open(rss_file, encoding="utf-8") as handle:
        rss = [int(line) for line in handle if line.strip()]
    return {"ping": ping, "flush": flush, "peak_rss_mib": max(rss) / 1024.0}


def measure_lro(bench: Bench, seconds: float = 5.0) -> t.Dict[str, t.Any]:
    """A 202 flush of a few seconds with Retry-After: 1: how late the task notices the end, and its polls."""
    bench.emu.load({"caches": [{"name": "c1", "resource_group": "rg",
                                "flush": {"mode": "async", "duration": seconds, "retry_after": 1}}]})
    out = bench.run(bench.adhoc("azure_hpc.cache.azure_hpc_cache_flush", "name=c1 resource_group=rg"))[1]
    result = json.loads(out[out.index("{"):])
    log = bench.emu.log()
    first_get = min(e["time"] for e in log if e["kind"] == "get")
    post = [e["time"] for e in log if e["kind"] == "flush"][0]
    polls = [e["time"] for e in log if e["kind"] == "operation"]
    op_end = post + seconds
    return {"operation_seconds": seconds, "polls": result["polls"],
            "detect_delay": polls[-1] - op_end, "task_end_delay": first_get + result["elapsed"] - op_end}


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
                    "--forks", str(fork), "-e", "cache_maintenance_healthy_delay=1"]
            seconds = bench.run(argv)[0]
            flushes = sum(c["flushes"] for c in bench.emu.state()["caches"])
            if flushes != size:
                raise RuntimeError("expected %d flushes, the emulator saw %d" % (size, flushes))
            rows.append({"caches": size, "forks": fork, "seconds": seconds})
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


def versions() -> t.Dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("ansible-core", "azure-identity", "requests", "msal"):
        try:
            from importlib.metadata import version  # pylint: disable=import-outside-toplevel

            out[name] = version(name)
        except Exception:  # pylint: disable=broad-except
            out[name] = "?"
    return out


def report(data: t.Dict[str, t.Any]) -> str:
    tasks, lro = data["tasks"], data["lro"]
    ping, flush = median(tasks["ping"]), median(tasks["flush"])
    lines = [
        "# azure_hpc.cache benchmark",
        "",
        "Run %s on %s (%d cores), %s." % (data["when"], platform.node() or "?", os.cpu_count() or 0, platform.platform()),
        "Versions: %s." % ", ".join("%s %s" % kv for kv in data["versions"].items()),
        "All traffic went to the local emulator at %s." % data["emulator"],
        "",
        "## One task (%d interleaved runs each, medians)" % len(tasks["ping"]),
        "",
        "| what | median s | min s | max s |",
        "|---|---|---|---|",
        "| floor: `ansible localhost -m ansible.builtin.ping` | %.3f | %.3f | %.3f |" % (
            ping, min(tasks["ping"]), max(tasks["ping"])),
        "| our flush task (immediate 204) | %.3f | %.3f | %.3f |" % (flush, min(tasks["flush"]), max(tasks["flush"])),
        "",
        "ours / floor: **%.2f**. Peak resident memory of the module process: **%.1f MiB**." % (
            flush / ping, tasks["peak_rss_mib"]),
        "",
        "## Long-running operation (%.0f s, Retry-After: 1)" % lro["operation_seconds"],
        "",
        "- status requests: **%d** (bound: operation seconds / Retry-After + 1 = %d)" % (
            lro["polls"], int(lro["operation_seconds"] / 1 + 1)),
        "- last status request after the operation's end: %.3f s" % lro["detect_delay"],
        "- module end after the operation's end: **%.3f s**" % lro["task_end_delay"],
        "",
        "## Maintenance playbook (role per cache, %.0f-second flush each)" % data["fleet_flush_seconds"],
        "",
        "| caches | forks | wall s | / 1 cache |",
        "|---|---|---|---|",
    ]
    one = [r["seconds"] for r in data["fleet"] if r["caches"] == 1]
    for row in data["fleet"]:
        ratio = "%.2f" % (row["seconds"] / one[0]) if one else "-"
        lines.append("| %d | %d | %.1f | %s |" % (row["caches"], row["forks"], row["seconds"], ratio))
    lines += [
        "",
        "## auth_source=auto with no credentials",
        "",
        "Fails clearly in **%.2f s** (whole ad-hoc task; the instance-metadata probe is bounded at 0.5 s)." % data["auth"],
        "",
        "## Import cost of the flush module (`python -X importtime`): %.1f ms" % data["import_ms"],
        "",
        "```",
    ] + data["import_top"] + ["```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--fleet", default="1,20,100")
    parser.add_argument("--forks", default="20,100")
    parser.add_argument("--flush-seconds", type=float, default=10.0)
    parser.add_argument("--report", default=os.path.join(ROOT, "bench-report.md"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.fleet.split(",") if x]
    forks = [int(x) for x in args.forks.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="hpc-cache-bench-") as workdir, Emulator() as emu:
        bench = Bench(emu, workdir)
        try:
            data = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "versions": versions(), "emulator": emu.url, "fleet_flush_seconds": args.flush_seconds}
            data["tasks"] = measure_tasks(bench, args.runs)
            data["lro"] = measure_lro(bench)
            data["auth"] = measure_auth_failure(bench)
            data["import_ms"], data["import_top"] = import_cost()
            data["fleet"] = measure_fleet(bench, sizes, forks, args.flush_seconds)
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
