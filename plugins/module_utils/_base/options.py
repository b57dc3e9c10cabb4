# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options declared once: each with its type, its default and the rule its value is checked by, together.

An Option is one declaration; Options is a set of them in order. From Options come the Ansible
argument_spec (a fresh copy on each call: a module may change its own) and the checked values
(each option's rule run on its value, in the order declared, before any request). The doc
fragments restate some of these sets; tests/unit/plugins/doc_fragments checks they agree.
"""

from __future__ import annotations

import copy
import typing as t
from dataclasses import dataclass

#: A rule: (value, option name) -> the value to use, or ValidationError (_base/validation.py).
Rule = t.Callable[[t.Any, str], t.Any]


@dataclass(frozen=True)
class Option:
    """One option: its Ansible spec (type, default, elements, choices, ...) and its rule.

    rule: checks the value before any request (None: the value is taken as Ansible gives it).
    options: the sub-options of a dict or of a list of dicts. removed_in_version and
    removed_from_collection: a deprecated option, as Ansible's argument spec says it.
    """

    type: str = "str"
    default: t.Any = None
    rule: t.Optional[Rule] = None
    required: bool = False
    elements: t.Optional[str] = None
    choices: t.Optional[t.Tuple[t.Any, ...]] = None
    aliases: t.Tuple[str, ...] = ()
    no_log: t.Optional[bool] = None
    options: t.Optional[Options] = None
    removed_in_version: t.Optional[str] = None
    removed_from_collection: t.Optional[str] = None

    def spec(self) -> t.Dict[str, t.Any]:
        """The Ansible argument spec of this option: only what is declared, each value a fresh copy."""
        spec: t.Dict[str, t.Any] = {"type": self.type}
        if self.required:
            spec["required"] = True
        if self.default is not None:
            spec["default"] = copy.deepcopy(self.default)
        if self.elements is not None:
            spec["elements"] = self.elements
        if self.choices is not None:
            spec["choices"] = list(self.choices)
        if self.aliases:
            spec["aliases"] = list(self.aliases)
        if self.no_log is not None:
            spec["no_log"] = self.no_log
        if self.options is not None:
            spec["options"] = self.options.argument_spec()
        if self.removed_in_version is not None:
            spec["removed_in_version"] = self.removed_in_version
        if self.removed_from_collection is not None:
            spec["removed_from_collection"] = self.removed_from_collection
        return spec

    def check(self, value: t.Any, name: str) -> t.Any:
        """The value to use: what the rule returns, or the value itself when the option has no rule."""
        return value if self.rule is None else self.rule(value, name)


class Options(t.Mapping[str, Option]):
    """Options in the order declared, each name once: Options(ACTION_OPTIONS, name=Option(...)).

    Groups come first, in order, then the keyword declarations; a name declared twice is an error
    (an option is declared once). The set does not change once made.
    """

    def __init__(self, *groups: t.Mapping[str, Option], **options: Option) -> None:
        declared: t.Dict[str, Option] = {}
        for group in groups + (options,):
            for name, option in group.items():
                if name in declared:
                    raise ValueError("the option %s is declared twice" % name)
                declared[name] = option
        self._options = declared

    def __getitem__(self, name: str) -> Option:
        return self._options[name]

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def __repr__(self) -> str:
        return "Options(%s)" % ", ".join(self._options)

    def argument_spec(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        """The Ansible argument_spec: a fresh copy on each call."""
        return {name: option.spec() for name, option in self._options.items()}

    def validate(self, params: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
        """Each option's value, checked by its rule in the order declared (the first broken rule raises)."""
        return {name: option.check(params.get(name), name) for name, option in self._options.items()}
