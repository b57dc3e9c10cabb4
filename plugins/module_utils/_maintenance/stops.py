# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why a maintenance run stops sending: the exceptions of the protocol (docs/maintenance-protocol.md, I2, I4)."""

from __future__ import annotations

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import HpcCacheError


class Stopped(HpcCacheError):
    """The run must send nothing more. Never an ArmError or TransportError, so no action takes it for the
    answer to its own request."""


class RunGone(Stopped):
    """The playbook this module runs under has ended (a canceled job, a killed run): nothing more is sent."""


class HoldLost(Stopped):
    """The hold is no longer this run's, or has too little time left: nothing more is sent."""


class FenceFailed(Stopped):
    """The record could not be read just before a request that changes a target: the request is not sent."""
