# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a read (an info module) runs; mirrors READ_OPTIONS in module_utils/_arm/read.py
    # (tests/unit/plugins/doc_fragments/test_read_fragment.py checks it).
    DOCUMENTATION = r"""
options:
  api_version:
    description:
      - The Microsoft.StorageCache API version to call.
    type: str
    default: '2026-01-01'
  timeout:
    description:
      - Seconds the task may take in all, retries and every page of a listing included; it fails after that.
        Must be greater than 0.
      - A single answer that does not arrive in full within this time (or 60 seconds) is given up.
    type: int
    default: 300
    version_added: 0.2.1
"""
