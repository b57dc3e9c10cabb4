# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the record is kept, and how it is read and written: the cache's tags, or a controller-local file.

A store writes once per call (I5: the caller reads the record again and decides again before another
write); a write the service did not take, and that may be tried again, raises WriteRefused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import typing as t
from email.utils import parsedate_to_datetime

from ansible_collections.azure_hpc.cache.plugins.module_utils._actions.poller import Poller
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.cache import health_state
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ArmError, HpcCacheError, TransportError
from ansible_collections.azure_hpc.cache.plugins.module_utils._maintenance.tags import cache_hash
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.response import Response
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RETRYABLE_STATUS


class WriteRefused(HpcCacheError):
    """A record write the service did not take, and that may be tried again after reading the record again:
    409 (another operation on the cache), 429, a 5xx, or no answer."""

    def __init__(self, message: str, retry_after: t.Optional[float]) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TagStore:
    """The cache's tags: read with the cache (GET), written through ARM's Tags API, one try at a time."""

    where = "tags of the cache"

    def __init__(self, ops: CacheOperations, ref: CacheRef, deadline: Deadline) -> None:
        self.ops, self.ref, self.deadline = ops, ref, deadline
        self.server_date: t.Optional[float] = None  # the Date of the last answer read, in seconds since 1970
        self.watch: t.Optional[t.Callable[[], None]] = None  # called while an accepted (202) write is pending
        self.health_state: t.Optional[str] = None  # the cache's health state, as the last read showed it

    def read(self) -> t.Dict[str, str]:
        response = self.ops.client.get(self.ops.cache_url(self.ref), deadline=self.deadline.at)
        self.server_date = _date_of(response)
        body = response.json_object()
        self.health_state = health_state(body)
        tags = body.get("tags")
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    def _patch(self, operation: str, tags: t.Mapping[str, str]) -> None:
        """One write. 200 is done; 202 is followed to its end (Location, or Azure-AsyncOperation); a
        transient answer or none raises WriteRefused, any other error ArmError (nothing to retry)."""
        body = {"operation": operation, "properties": {"tags": dict(tags)}}
        try:
            response = self.ops.client.patch_json(self.ops.tags_url(self.ref), body, deadline=self.deadline.at,
                                                  retry=False)
        except ArmError as exc:
            if exc.status in RETRYABLE_STATUS or exc.status == 409:
                raise WriteRefused(exc.message, exc.retry_after) from None
            raise
        except TransportError as exc:
            raise WriteRefused(exc.message, None) from None
        if response.status == 202:
            async_url = response.headers.get("Azure-AsyncOperation")
            location = response.headers.get("Location")
            if async_url or location:
                self._follow(async_url, location, response.retry_after())

    def _follow(self, async_url: t.Optional[str], location: t.Optional[str], first: t.Optional[float]) -> None:
        """Follow an accepted write to its end, calling watch() before every status read (the record is
        watched while a write of the hold is pending: another run's hold seen meanwhile is a conflict)."""
        poller = Poller(self.ops.client)
        url = self.ops.client.absolute(async_url or location or "")
        delay = first or 1.0
        while True:
            if not self.deadline.pause(max(delay, 1.0)):
                raise HpcCacheError("The write of the maintenance record on %s was accepted but did not end in "
                                    "time" % self.ref.name)
            if self.watch is not None:
                self.watch()
            reading = (poller.read_async_operation(url, deadline=self.deadline) if async_url
                       else poller.read_location(url, deadline=self.deadline))
            if reading.done:
                if reading.status != "Succeeded":
                    raise HpcCacheError("The write of the maintenance record on %s ended %s"
                                        % (self.ref.name, reading.status))
                return
            delay = reading.retry_after or 1.0

    def merge(self, tags: t.Mapping[str, str]) -> None:
        self._patch("Merge", tags)

    def delete(self, tags: t.Mapping[str, str]) -> None:
        if tags:
            self._patch("Delete", tags)


class FileStore:
    """A controller-local record (opt-in, where the cache's tags cannot be written): one JSON file per
    cache under a directory of mode 0700, changed under an exclusive lock (a lock file beside it, waited for
    within the run's deadline) and replaced whole (written aside, synced, renamed), so a killed run never
    leaves it torn. An unreadable record fails the run and is kept as it is. Only this controller sees it."""

    where = "controller-local record"
    server_date: t.Optional[float] = None

    def __init__(self, directory: str, ref: CacheRef, deadline: t.Optional[Deadline] = None) -> None:
        self.directory = os.path.expanduser(directory)
        self.path = os.path.join(self.directory, "%s.json" % cache_hash(ref))
        self.deadline = deadline

    def _lock(self, handle: t.Any, kind: int) -> None:
        while True:
            try:
                fcntl.flock(handle, kind | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise HpcCacheError("Cannot lock the controller-local record %s: %s" % (self.path, exc))
            if self.deadline is None or not self.deadline.pause(0.2):
                raise HpcCacheError("The controller-local record %s stayed locked by another process until this "
                                    "task's deadline" % self.path)

    def _locked(self, kind: int) -> t.Any:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        handle = os.fdopen(os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            self._lock(handle, kind)
        except BaseException:
            handle.close()
            raise
        return handle

    def _load(self) -> t.Dict[str, str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return {}
            raise HpcCacheError("Cannot read the controller-local record %s: %s" % (self.path, exc))
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise HpcCacheError("The controller-local record %s is unreadable; it is kept as it is, and nothing was "
                                "sent: look at it, and remove it once no target it names is suspended" % self.path)
        return {str(k): str(v) for k, v in data.items()}

    def _change(self, change: t.Callable[[t.Dict[str, str]], None]) -> None:
        with self._locked(fcntl.LOCK_EX):
            tags = self._load()
            change(tags)
            aside = self.path + ".new"
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(tags, sort_keys=True))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(aside, self.path)
            folder = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    def read(self) -> t.Dict[str, str]:
        with self._locked(fcntl.LOCK_SH):
            return self._load()

    def merge(self, tags: t.Mapping[str, str]) -> None:
        self._change(lambda now: now.update(tags))

    def delete(self, tags: t.Mapping[str, str]) -> None:
        def drop(now: t.Dict[str, str]) -> None:
            for name, value in tags.items():
                if now.get(name) == value:
                    now.pop(name, None)

        self._change(drop)


# Either store: what the protocol reads and writes through.
Store = t.Union[TagStore, FileStore]


def _date_of(response: Response) -> t.Optional[float]:
    text = response.headers.get("Date")
    if not text:
        return None
    try:
        return parsedate_to_datetime(str(text)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
