# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""azure_hpc_cache_upgrade: progress lines while it runs, its end seen at once (plugin_utils/_progress.py)."""

from __future__ import annotations

from ansible_collections.azure_hpc.cache.plugins.plugin_utils._progress import ProgressAction as ActionModule

__all__ = ["ActionModule"]
