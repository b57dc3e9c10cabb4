# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From validated auth settings to a ready ARM client: cloud, credential, token provider, session.

Shared by the modules and the inventory plugin, so both authenticate the same way.
"""

from __future__ import annotations

import typing as t

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.exchange import HAS_REQUESTS, REQUESTS_IMPORT_ERROR, fetch_metadata
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RetryPolicy
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.cloud import resolve_cloud
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.credentials import (
    AuthSettings,
    MissingLibraryError,
    TokenProvider,
    build_credential,
)
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.http import session as http_session


def connect(settings: AuthSettings, timeout: t.Optional[float] = None, concurrency: int = 1) -> ArmClient:
    """timeout bounds each request, metadata discovery included (a task's wait_timeout).

    concurrency is how many threads share the client: the connection pool keeps
    that many connections alive instead of opening and dropping extra ones.
    """
    if not HAS_REQUESTS:
        raise MissingLibraryError("requests", REQUESTS_IMPORT_ERROR or ImportError("requests"))
    policy = RetryPolicy()
    if timeout is not None:
        policy = RetryPolicy(connect_timeout=min(policy.connect_timeout, timeout),
                             read_timeout=min(policy.read_timeout, timeout))
    session = http_session(concurrency)
    cloud = resolve_cloud(settings.cloud_environment, lambda url: fetch_metadata(session, url, policy))
    credential, description = build_credential(settings, cloud)
    tokens = TokenProvider(credential, cloud.scope, description, secrets=settings.secrets)
    return ArmClient(cloud, tokens, session=session, policy=policy, secrets=settings.secrets)
