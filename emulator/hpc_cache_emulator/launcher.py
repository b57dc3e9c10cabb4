# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start the emulator as a separate process and talk to its control routes.

Used by the end-to-end tests, the demo and the benchmark; nothing here
imports the collection.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 30.0


class Emulator:
    def __init__(self, scenario: t.Optional[t.Mapping[str, t.Any]] = None, tls: bool = False) -> None:
        self.workdir = tempfile.mkdtemp(prefix="hpc-cache-emulator-")
        scenario_path = os.path.join(self.workdir, "scenario.json")
        with open(scenario_path, "w", encoding="utf-8") as handle:
            json.dump(scenario or {}, handle)
        ready = os.path.join(self.workdir, "ready.json")
        cmd = [sys.executable, "-m", "hpc_cache_emulator", "--scenario", scenario_path,
               "--ready-file", ready, "--state-dir", self.workdir]
        if tls:
            cmd.append("--tls")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        self.log_path = os.path.join(self.workdir, "emulator.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(ready):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                    raise RuntimeError("the emulator did not start: " + handle.read()[-2000:])
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as handle:
            self.facts = json.load(handle)
        self.url: str = self.facts["url"]
        self.ca_bundle: t.Optional[str] = self.facts.get("ca_bundle")
        self._context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None

    # Control routes ------------------------------------------------------
    def _call(self, method: str, path: str, body: t.Any = None) -> t.Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10, context=self._context) as answer:  # nosec - loopback
            return json.loads(answer.read() or b"null")

    def load(self, scenario: t.Mapping[str, t.Any]) -> None:
        self._call("PUT", "/_emulator/scenario", scenario)

    def token(self, lifetime: t.Optional[float] = None) -> str:
        """A bearer token the emulator accepts (from its control route; lifetime in seconds)."""
        query = "?lifetime=%g" % lifetime if lifetime is not None else ""
        return str(self._call("POST", "/_emulator/token" + query)["access_token"])

    def state(self) -> t.Dict[str, t.Any]:
        return self._call("GET", "/_emulator/state")

    def log(self) -> t.List[t.Dict[str, t.Any]]:
        return self.state()["log"]

    def flushes(self, name: str) -> int:
        return sum(c["flushes"] for c in self.state()["caches"] if c["name"] == name)

    def finish(self, cache: str, target: t.Optional[str] = None, action: bool = False) -> int:
        """End the running flush of a cache now (with target: the running action of that storage target;
        with action: its running stop, start or upgrade); how many were ended."""
        query = "cache=%s" % cache + ("&target=%s" % target if target else "") + ("&action=1" if action else "")
        return int(self._call("POST", "/_emulator/finish?" + query)["ended"])

    def actions(self, name: str) -> t.Dict[str, int]:
        """How many stops, starts and upgrades a cache was sent that it acted on ({"stop": 1, ...})."""
        for entry in self.state()["caches"]:
            if entry["name"].lower() == name.lower():
                return entry["actions"]
        raise KeyError(name)

    def throttled(self, bucket: t.Optional[str] = None) -> int:
        """How many requests were answered 429 because a throttling bucket was spent (bucket: only that
        one, "FlushCache5Min" or "StartOrStopCache1Min")."""
        return sum(1 for e in self.log() if e.get("status") == 429 and e.get("throttled")
                   and (bucket is None or e["throttled"] == bucket))

    def buckets(self) -> t.List[t.Dict[str, t.Any]]:
        """The throttling buckets now: subscription_id, bucket, limit, window, used, remaining, refills_in,
        refused."""
        return self.state()["throttle"]["buckets"]

    def target(self, cache: str, name: str) -> t.Dict[str, t.Any]:
        """A storage target's state and the actions sent to it ({"state": ..., "sent": {"suspend": 1, ...}})."""
        for target in self.state()["storage_targets"]:
            if target["cache"] == cache and target["name"] == name:
                return target
        raise KeyError("%s/%s" % (cache, name))

    def set_tags(self, cache: str, tags: t.Mapping[str, str], resource_group: t.Optional[str] = None) -> int:
        """Set a cache's tags directly, as they are, past ARM's limits (a planted or a forged record); how
        many caches of that name (in resource_group, when given) were set."""
        params = {"cache": cache}
        if resource_group:
            params["resource_group"] = resource_group
        query = urllib.parse.urlencode(params)
        return int(self._call("POST", "/_emulator/tags?" + query, {"tags": dict(tags)})["updated"])

    def tags(self, cache: str) -> t.Dict[str, str]:
        """A cache's true tags now (what its GET shows, unless the scenario's tags_read_lag holds an older view)."""
        for entry in self.state()["caches"]:
            if entry["name"].lower() == cache.lower():
                return entry["tags"]
        raise KeyError(cache)

    def env(self, subscription_id: str = "00000000-0000-0000-0000-000000000000") -> t.Dict[str, str]:
        """The environment a managed-identity job sees, pointed at this emulator."""
        env = {
            "AZURE_SUBSCRIPTION_ID": subscription_id,
            "AZURE_CLOUD_ENVIRONMENT": self.url,
            "IDENTITY_ENDPOINT": self.facts["msi_endpoint"],
            "IDENTITY_HEADER": self.facts["identity_header"],
        }
        if self.ca_bundle:
            env["REQUESTS_CA_BUNDLE"] = self.ca_bundle
        return env

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()
