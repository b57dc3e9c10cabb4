# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a flush runs; mirrored by flush_argument_spec() in module_utils/_cache.py.
    DOCUMENTATION = r"""
options:
  api_version:
    description:
      - The Microsoft.StorageCache API version to call.
    type: str
    default: '2026-01-01'
  wait:
    description:
      - Wait for the flush to finish.
      - With V(false) the flush of a cache is reported once the service has accepted it, with status
        V(InProgress) and its operation URL. Running the task again attaches to that flush.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the flush of a cache may take, its retries and its wait included. Must be greater than 0.
      - At the timeout the flush is reported as failed with its operation URL, and a rerun attaches to the
        running flush.
    type: int
    default: 3600
  poll_interval:
    description:
      - Seconds between status requests when the service sends no C(Retry-After). Must be greater than 0.
    type: int
    default: 10
  allowed_states:
    description:
      - A safety interlock. When set, a cache whose health state is not in this list (compared without
        regard to case) is not flushed, and is reported as failed with status V(Refused), before any flush is sent.
      - A cache that is C(Flushing), C(Stopped) or C(Stopping) is handled as described above whatever
        this list holds.
      - When empty, a cache in any other state is flushed, and the service decides.
    type: list
    elements: str
    default: []
"""
