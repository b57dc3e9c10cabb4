# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input rules of the options (docs/design.md, "Validation"), checked once before any request.

Every check raises ValidationError naming the option and the rule, so the
task fails with a message an operator can act on.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import ValidationError

# fullmatch() everywhere: "$" would also match before a trailing newline.
# The API's CacheNameParameter and StorageTargetParameter (2026-01-01) share this pattern.
CACHE_NAME_RE = re.compile(r"[-0-9a-zA-Z_]{1,80}")
CACHE_NAME_RULE = "must be 1 to 80 characters of letters, digits, '-' and '_' (pattern ^[-0-9a-zA-Z_]{1,80}$)"
STORAGE_TARGET_NAME_RE = CACHE_NAME_RE
STORAGE_TARGET_NAME_RULE = CACHE_NAME_RULE

RESOURCE_GROUP_RE = re.compile(r"[-\w.()]{1,90}")
RESOURCE_GROUP_RULE = (
    "must be 1 to 90 characters of letters, digits, '_', '-', '.', '(' and ')', and must not end with '.'"
)

GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
GUID_RULE = "must be a GUID such as 00000000-0000-0000-0000-000000000000"

API_VERSION_RULE = "must be a non-empty string without whitespace or control characters"


def _shown(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def cache_name(value: t.Any, option: str = "name") -> str:
    if not isinstance(value, str) or not CACHE_NAME_RE.fullmatch(value):
        raise ValidationError(option, "%s %s" % (_shown(value), CACHE_NAME_RULE))
    return value


def storage_target_name(value: t.Any, option: str = "name") -> str:
    if not isinstance(value, str) or not STORAGE_TARGET_NAME_RE.fullmatch(value):
        raise ValidationError(option, "%s %s" % (_shown(value), STORAGE_TARGET_NAME_RULE))
    return value


def resource_group(value: t.Any, option: str = "resource_group") -> str:
    if not isinstance(value, str) or RESOURCE_GROUP_RE.fullmatch(value) is None or value.endswith("."):
        raise ValidationError(option, "%s %s" % (_shown(value), RESOURCE_GROUP_RULE))
    return value


def subscription_id(value: t.Any, option: str = "subscription_id") -> str:
    if value is None or value == "":
        raise ValidationError(
            option, "is required: set the option or the AZURE_SUBSCRIPTION_ID environment variable (%s)" % GUID_RULE
        )
    if not isinstance(value, str) or not GUID_RE.fullmatch(value):
        raise ValidationError(option, "%s %s" % (_shown(value), GUID_RULE))
    return value.lower()


def api_version(value: t.Any, option: str = "api_version") -> str:
    if not isinstance(value, str) or value == "" or not all(ch.isprintable() and not ch.isspace() for ch in value):
        raise ValidationError(option, "%s %s" % (_shown(value), API_VERSION_RULE))
    return value


def positive_int(value: t.Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(option, "%s must be an integer greater than 0" % _shown(value))
    return value


def state_names(value: t.Any, option: str) -> t.List[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError(option, "%s must be a list of non-empty health state names" % _shown(value))
    return [v.strip() for v in value]


def optional(rule: t.Callable[[t.Any, str], t.Any]) -> t.Callable[[t.Any, str], t.Any]:
    """The rule for an option that may be left out: None when it was, else what the rule says."""
    def check(value: t.Any, option: str) -> t.Any:
        return None if value is None else rule(value, option)

    return check
