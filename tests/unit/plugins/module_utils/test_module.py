# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import AUTH_OPTIONS
from ansible_collections.azure_hpc.cache.plugins.module_utils._ansible.module import auth_argument_spec


def test_the_shared_options_come_from_auth_options():
    spec = auth_argument_spec()
    assert list(spec) == list(AUTH_OPTIONS)
    assert spec["secret"] == {"type": "str", "no_log": True,
                              "fallback": (env_fallback, ["AZURE_SECRET", "AZURE_CLIENT_SECRET"])}
    assert spec["auth_source"]["default"] == "auto" and "fallback" not in spec["auth_source"]
    assert [name for name, option in spec.items() if option.get("no_log")] == ["secret", "password"]


def test_each_call_gives_a_spec_of_its_own():
    first = auth_argument_spec()
    first["secret"]["fallback"][1].append("LEAK")
    assert auth_argument_spec()["secret"]["fallback"][1] == ["AZURE_SECRET", "AZURE_CLIENT_SECRET"]
