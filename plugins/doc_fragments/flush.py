# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The cache flush's own option, beside azure_hpc.cache.action; mirrors FLUSH_OPTIONS in
    # module_utils/_actions/cache_flush.py (tests/unit/plugins/doc_fragments checks it).
    DOCUMENTATION = r"""
options:
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
