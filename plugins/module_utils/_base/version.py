# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's version, sent in the User-Agent of every request."""

from __future__ import annotations

COLLECTION_NAME = "azure_hpc.cache"
COLLECTION_VERSION = "0.5.1"
