# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.client import ArmClient
from ansible_collections.azure_hpc.cache.plugins.module_utils._transport.retry import RetryPolicy
from ansible_collections.azure_hpc.cache.tests.unit.fakes import CLOUD, FakeClock, FakeSession, FakeTokens


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> t.Callable[..., t.Tuple[ArmClient, FakeSession]]:
    def make(script: t.Any, attempts: int = 4) -> t.Tuple[ArmClient, FakeSession]:
        session = FakeSession(script)
        client = ArmClient(CLOUD, FakeTokens(), session=session, policy=RetryPolicy(attempts=attempts),
                           sleep=clock.sleep, clock=clock, rng=lambda: 1.0, secrets=("s3cr3t-value",))
        return client, session

    return make
