# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/azure_hpc.cache.all) in C(module_defaults) to set the shared options once.
    support: full
    membership:
      - azure_hpc.cache.all
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: This module never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: N/A
    details: This module never changes anything.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
"""

    # What the flush modules declare: the same reads and decisions, one cache or many.
    FLUSH_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: Each cache is read, no flush is sent, and C(changed) is what the real run would report.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - A cache that is already flushing, stopping or stopped is not flushed, and reports no change.
      - A healthy cache is flushed on every run; flushing is an action, not a state.
"""

    # What the storage-target module declares.
    TARGET_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: The target is read, no action is sent, and C(changed) is what the real run would report.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - A C(Suspended) target is not suspended again and an active one is not resumed; both report no change.
      - V(state=flushed) flushes on every run (a running flush is attached to); flushing is an action, not a state.
"""

    # What the maintenance record module declares.
    RECORD_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: The record and the targets are read; nothing is written or resumed, and RV(recovered) says what would be.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - V(state=held) renews the hold on every call (a new bound); V(state=released) with nothing recorded changes nothing.
"""

    # What the cache lifecycle modules (upgrade, power) declare.
    LIFECYCLE_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: The cache is read, nothing is sent, and C(changed) is what the real run would report.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details:
      - A started cache is not started again, a stopped one not stopped again; a cache with no upgrade pending gets none.
"""
