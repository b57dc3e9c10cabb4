# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes for unit tests: a scripted requests session, a clock that sleeps instantly, a token provider,
and the routes of one cache's flush."""

from __future__ import annotations

import contextlib
import email.utils
import json
import threading
import time
import typing as t

import pytest
import requests
from ansible.module_utils import basic
from requests.structures import CaseInsensitiveDict

from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible import module as _module
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import Cloud
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheRef

ARM = "https://management.example.test/"
SUB = "00000000-0000-0000-0000-000000000000"
CLOUD = Cloud("Test", ARM, "https://login.example.test/", ARM, custom=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: t.List[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRaw:
    def __init__(self, status: int, body: t.Any = None, headers: t.Optional[t.Mapping[str, str]] = None,
                 raw: t.Optional[bytes] = None) -> None:
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers or {})
        if raw is not None:
            self.content = raw
        else:
            self.content = b"" if body is None else json.dumps(body).encode()

    def close(self) -> None:
        pass


class FakeSession:
    """Answers requests from a script: a list of FakeRaw or exceptions, or a callable(method, url)."""

    def __init__(self, script: t.Union[t.List[t.Any], t.Callable[[str, str], t.Any]]) -> None:
        self.script = script
        self.calls: t.List[t.Dict[str, t.Any]] = []

    def request(self, method: str, url: str, headers: t.Mapping[str, str], timeout: t.Any,
                allow_redirects: bool, data: t.Any = None, stream: bool = False,
                proxies: t.Optional[t.Mapping[str, t.Any]] = None) -> FakeRaw:
        assert allow_redirects is False
        self.calls.append({"method": method, "url": url, "headers": dict(headers), "timeout": timeout,
                           "proxies": proxies, "data": data})
        self.data = data
        if hasattr(self.script, "receive"):
            self.script.receive(data)  # a route that reads request bodies
        answer = self.script(method, url) if callable(self.script) else self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class FakeTokens:
    def __init__(self) -> None:
        self.calls: t.List[bool] = []

    def token(self, force_refresh: bool = False, rejected: t.Optional[str] = None) -> str:
        self.calls.append(force_refresh)
        return "tok-%d" % len(self.calls)

    known_tokens = ()


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens: the request was never sent."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason))


def reset() -> requests.exceptions.ConnectionError:
    """A reset after the request went out: it may have been processed."""
    from urllib3.exceptions import ProtocolError

    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


# A cache c1 in rg, and the routes of its flush.
REF = CacheRef(SUB, "rg", "c1")
CACHE_PATH = "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/c1" % SUB
OP = ARM + "subscriptions/%s/providers/Microsoft.StorageCache/locations/eastus/ascOperations/1?api-version=v" % SUB


def cache(state):
    return FakeRaw(200, {"id": "/" + CACHE_PATH, "name": "c1", "location": "eastus",
                         "properties": {"health": {"state": state, "statusDescription": "d"},
                                        "provisioningState": "Succeeded"}})


class Arm:  # pylint: disable=too-few-public-methods
    """Routes: GET cache -> states in turn (last repeats); POST -> posts in turn; GET operation -> ops in turn."""

    def __init__(self, states, posts=(), ops=()):
        self.states, self.posts, self.ops = list(states), list(posts), list(ops)
        self.seen = []

    def __call__(self, method, url):
        self.seen.append((method, url.split("?")[0].replace(ARM, "")))
        if method == "POST":
            assert url == ARM + CACHE_PATH + "/flush?api-version=v"
            return self.posts.pop(0)
        if "ascOperations" in url:
            return self.ops.pop(0)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return state if isinstance(state, (FakeRaw, BaseException)) else cache(state)

    @property
    def post_count(self):
        return sum(1 for seen in self.seen if seen[0] == "POST")


def accepted(retry_after="1"):
    return FakeRaw(202, None, {"Azure-AsyncOperation": OP, "Location": OP + "&monitor=true", "Retry-After": retry_after})


# A storage target filer-01 of c1, and the routes of its actions.
TARGET_PATH = CACHE_PATH + "/storageTargets/filer-01"


def target(state, junctions=None):
    props = {"targetType": "nfs3", "state": state, "provisioningState": "Succeeded"}
    if junctions is not None:
        props["junctions"] = junctions
    return FakeRaw(200, {"id": "/" + TARGET_PATH, "name": "filer-01", "properties": props})


class TargetArm:  # pylint: disable=too-few-public-methods
    """Routes: GET target -> states in turn (last repeats); POST .../{action} -> answers[action] in turn;
    GET operation -> ops in turn. read_before[i] is the state the target last read before posts[i]."""

    def __init__(self, states, answers=None, ops=()):
        self.states, self.answers, self.ops = list(states), {k: list(v) for k, v in (answers or {}).items()}, list(ops)
        self.posts = []
        self.read_before = []
        self.last_read = None

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if method == "POST":
            assert path.startswith(TARGET_PATH + "/"), path
            action = path.rsplit("/", 1)[1]
            self.posts.append(action)
            self.read_before.append(self.last_read)
            return self.answers[action].pop(0)
        if "ascOperations" in url:
            return self.ops.pop(0)
        assert path == TARGET_PATH, path
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        self.last_read = state
        return state if isinstance(state, (FakeRaw, BaseException)) else target(state)


# Many caches of rg, for the fleet.
PREFIX = "subscriptions/%s/resourceGroups/rg/providers/Microsoft.StorageCache/caches/" % SUB


class FleetArm:
    """A thread-safe fake ARM for many caches: states by name, flushes counted by name."""

    def __init__(self, states, flush=None, hold=0.0):
        self.states = dict(states)
        self.flush = flush or (lambda name: FakeRaw(204, None))
        self.hold = hold  # real seconds each read takes, so reads of several caches overlap
        self.posts = {}
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if "ascOperations/" in path:
            time.sleep(self.hold)  # status reads of several caches overlap too
            return FakeRaw(200, {"status": "Succeeded"})
        name = path[len(PREFIX):].split("/")[0]
        if method == "POST":
            with self.lock:
                self.posts[name] = self.posts.get(name, 0) + 1
            return self.flush(name)
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.hold)
            state = self.states[name]
        finally:
            with self.lock:
                self.active -= 1
        if isinstance(state, (FakeRaw, BaseException)):
            return state
        return FakeRaw(200, {"id": "/" + PREFIX + name, "name": name, "properties": {"health": {"state": state}}})


# A module's main() as ansible-core calls it.
@contextlib.contextmanager
def module_args(args):
    try:  # ansible-core >= 2.19
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core 2.17, 2.18
        @contextlib.contextmanager
        def patch_module_args(a):
            saved = getattr(basic, "_ANSIBLE_ARGS", None)
            basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": a}).encode()
            try:
                yield
            finally:
                basic._ANSIBLE_ARGS = saved
    with patch_module_args(args):
        yield


def module_runner(monkeypatch, capsys, make_client, tmp_path, main):
    """run(args, arm) -> (result, built): main() with a scripted ARM; building a client without one fails."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_SECRET", "AZURE_TENANT"):
        monkeypatch.delenv(name, raising=False)

    def run(args, arm=None):
        built = []

        def client(self, timeout=None, concurrency=1):
            if arm is None:
                raise AssertionError("no client may be built for this input")
            built.append(concurrency)
            return make_client(arm)[0]

        monkeypatch.setattr(_module.HpcCacheModule, "client", client)
        with module_args(args), pytest.raises(SystemExit):
            main()
        return json.loads(capsys.readouterr().out), built

    return run


class RecordArm:  # pylint: disable=too-few-public-methods
    """Cache c1 with tags (read with the cache, written with the Tags API: Merge, and Delete of name/value
    pairs), its storage targets' states (each a list read in turn, the last repeating) and their resumes
    (202 and an operation that succeeded, or the answers given)."""

    def __init__(self, tags=None, targets=None, resume=None, deny_tags=None, health="Healthy", date=None):
        self.date = date  # a clock (seconds since 1970) the answers' Date header comes from; None: no Date
        self.data = None
        self.health = health
        self.tags = dict(tags or {})
        self.targets = {k: list(v) for k, v in (targets or {}).items()}
        self.resume = {k: list(v) for k, v in (resume or {}).items()}
        self.deny_tags = deny_tags
        self.posts = []
        self.patches = []
        self.in_progress = 0  # how many status reads of an operation answer InProgress first (a slow operation)
        self.log = []  # every POST to a target ("suspend filer-01") and every status read ("status"), in order

    def __call__(self, method, url):
        path = url.split("?")[0].replace(ARM, "")
        if path.endswith("/providers/Microsoft.Resources/tags/default") and method == "PATCH":
            body = json.loads(self.data)
            self.patches.append(body)
            if self.deny_tags is not None:
                return self.deny_tags
            tags = body["properties"]["tags"]
            if body["operation"] == "Merge":
                for name, value in tags.items():
                    for old in [k for k in self.tags if k.lower() == name.lower()]:
                        del self.tags[old]
                    self.tags[name] = value
            else:
                for name, value in tags.items():
                    for old in [k for k in self.tags if k.lower() == name.lower() and self.tags[k] == value]:
                        del self.tags[old]
            return FakeRaw(200, {"id": "/" + CACHE_PATH + "/providers/Microsoft.Resources/tags/default",
                                 "name": "default", "properties": {"tags": dict(self.tags)}})
        if "ascOperations" in url:
            self.log.append("status")
            if self.in_progress > 0:
                self.in_progress -= 1
                return FakeRaw(200, {"status": "InProgress"})
            return FakeRaw(200, {"status": "Succeeded"})
        if path == CACHE_PATH:
            headers = {"Date": email.utils.formatdate(int(self.date()), usegmt=True)} if self.date else None
            return FakeRaw(200, {"id": "/" + CACHE_PATH, "name": "c1", "tags": dict(self.tags),
                                 "properties": {"health": {"state": self.health, "statusDescription": "said"}}},
                           headers)
        if path == CACHE_PATH + "/storageTargets":
            return FakeRaw(200, {"value": [{"name": name, "properties": {"state": states[-1]}}
                                           for name, states in self.targets.items()]})
        name = path.split("/storageTargets/", 1)[1].split("/")[0]
        if method == "POST":
            action = path.rsplit("/", 1)[1]
            self.posts.append((action, name))
            self.log.append("%s %s" % (action, name))
            answers = self.resume.get(name)
            if answers:
                return answers.pop(0)
            self.targets[name] = ["Suspended" if action == "suspend" else "Ready"]
            return FakeRaw(202, None, {"Azure-AsyncOperation": OP})
        states = self.targets.get(name)
        if states is None:
            return FakeRaw(404, {"error": {"code": "NotFound", "message": "no target %s" % name}})
        state = states.pop(0) if len(states) > 1 else states[0]
        return state if isinstance(state, (FakeRaw, BaseException)) else FakeRaw(
            200, {"name": name, "properties": {"state": state}})

    def receive(self, data):
        self.data = data
