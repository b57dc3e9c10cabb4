# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base every module of the collection stands on.

It merges the shared auth options into the module's own (its Options, each
declared once with its rule; the auth options mirror the ``azure_hpc.cache.auth``
doc fragment), validates inputs before anything touches the network, builds one
ARM client per task, sets up a module that acts in one place (setup_action), and
turns every error of the shared layer into one fail_json, without a traceback in msg.
"""

from __future__ import annotations

import gc
import traceback
import typing as t
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.azure_hpc.cache.plugins.module_utils._base import validation as rules
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.deadline import Deadline
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.options import Options
from ansible_collections.azure_hpc.cache.plugins.module_utils._arm.resource import CacheOperations, CacheRef
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.connect import connect
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import (
    AUTH_OPTIONS,
    AuthSettings,
    MissingLibraryError,
    load_settings,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError, failure_of, redact


def auth_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    """The shared options of AUTH_OPTIONS; documented by the azure_hpc.cache.auth doc fragment."""
    spec: t.Dict[str, t.Dict[str, t.Any]] = {}
    for name, option in AUTH_OPTIONS.items():
        spec[name] = {"type": "str"}
        spec[name].update((key, option[key]) for key in ("default", "choices", "no_log") if key in option)
        if option.get("env"):
            spec[name]["fallback"] = (env_fallback, list(option["env"]))
    return spec


#: The bundle of how an action runs: ActionOptions, which the module gives (this base loads no action code, so
#: a module that only reads loads none).
B = t.TypeVar("B")


@dataclass(frozen=True)
class ActionSetup(t.Generic[B]):
    """What a module that acts starts from (HpcCacheModule.setup_action): its checked values, its one client,
    the task's one clock (made on the client's clock), the cache operations, the cache, and how the action
    runs (options: one bundle, built once)."""

    values: t.Mapping[str, t.Any]
    client: ArmClient
    deadline: Deadline
    ops: CacheOperations
    cache: CacheRef
    options: B


class HpcCacheModule:
    """An AnsibleModule with the shared options, validation and one place to fail."""

    def __init__(self, options: Options, **kwargs: t.Any) -> None:
        """options: the module's own, each declared once with its rule; the auth options are added."""
        self.options = options
        spec: t.Dict[str, t.Any] = auth_argument_spec()
        spec.update(options.argument_spec())
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.settings: t.Optional[AuthSettings] = None  # set by validate()
        self._secrets: t.Tuple[str, ...] = ()
        self._client: t.Optional[ArmClient] = None

    def validate(self, subscription_required: bool = True) -> t.Dict[str, t.Any]:
        """The subscription (from options, env or the credential file), then each option checked by its rule
        in the order declared: the values a task uses.

        Without subscription_required, a missing subscription is None (the module's items carry their own).
        """
        settings = self.settings = load_settings(self.params)
        self._secrets = settings.secrets
        self._hide(self._secrets)  # secrets read from ~/.azure/credentials are no option Ansible knows to hide
        subscription = settings.subscription_id
        values = {"subscription_id": rules.subscription_id(subscription)
                  if subscription_required or subscription not in (None, "") else None}
        values.update(self.options.validate(self.params))
        return values

    def setup_action(self, bundle: t.Callable[..., B], *, cache: str = "name") -> ActionSetup[B]:
        """The one setup of a module that acts: validate -> client -> deadline -> operations -> the cache
        (named by the option ``cache``) -> how the action runs: bundle(values, check_mode=...), ActionOptions.of.

        The module's Options hold ACTION_OPTIONS (api_version, wait_timeout, ...) and resource_group.
        """
        values = self.validate()
        client = self.client(timeout=values["wait_timeout"])
        # The task's one clock: the one the client bounds its requests on.
        deadline = Deadline.after(values["wait_timeout"], clock=client.clock, sleep=client.sleep)
        ops = CacheOperations(client, values["api_version"])
        ref = CacheRef(values["subscription_id"], values["resource_group"], values[cache])
        return ActionSetup(values, client, deadline, ops, ref, bundle(values, check_mode=self.check_mode))

    def client(self, timeout: t.Optional[float] = None, concurrency: int = 1) -> ArmClient:
        if self.settings is None:
            raise HpcCacheError("validate() runs before client()")
        self._client = connect(self.settings, timeout, concurrency)
        return self._client

    def secrets(self) -> t.Tuple[str, ...]:
        """Values no output may show: the given secrets and every token the task got."""
        return self._secrets + (tuple(self._client.tokens.known_tokens) if self._client else ())

    def _hide(self, values: t.Iterable[str]) -> None:
        """Ansible replaces these values wherever they appear in the result it prints or logs."""
        self.module.no_log_values.update(v for v in values if v)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def fail(self, msg: str, **result: t.Any) -> t.NoReturn:
        self._hide(self.secrets())
        for warning in result.pop("warnings", None) or []:
            self.module.warn(self.redact(str(warning)))
        self.module.fail_json(msg=self.redact(msg), **result)
        raise SystemExit(1)  # fail_json exits; said for the type checker

    def run(self, body: t.Callable[[], t.Dict[str, t.Any]],
            partial: t.Callable[[], t.Dict[str, t.Any]] = dict) -> t.NoReturn:
        """Run the module's body and exit; every error ends in one fail_json.

        partial() gives what the task had learnt before it failed (state,
        status code, operation URL), so a failed result still says it.
        """
        # What the imports built lives until the process ends: spare the cyclic garbage collector
        # from scanning it again during the run and once more at exit (about 30 ms of each task).
        gc.freeze()
        try:
            result = body()
        except MissingLibraryError as exc:
            self.fail(missing_required_lib(exc.library), **_learnt(partial()))
        except HpcCacheError as exc:
            msg, learnt = failure_of(exc)
            self.fail(msg, **_learnt(partial(), learnt))
        except Exception as exc:  # a bug: keep the traceback out of msg, at -vvv under 'exception'
            self.fail(failure_of(exc, self.secrets())[0], exception=self.redact(traceback.format_exc()),
                      **_learnt(partial()))
        self._hide(self.secrets())  # every token the task got, wherever it might appear (an operation's error)
        for warning in result.pop("warnings", None) or []:
            self.module.warn(self.redact(str(warning)))  # passing warnings to exit_json is deprecated
        self.module.exit_json(**result)
        raise SystemExit(0)  # exit_json exits; said for the type checker


def _learnt(*parts: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """What a failed task had learnt, merged; its own msg (a step's) gives way to the failure's."""
    merged: t.Dict[str, t.Any] = {}
    for part in parts:
        merged.update(part)
    merged.pop("msg", None)
    merged.pop("exception", None)
    return merged
