# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local Azure Resource Manager emulator for Microsoft.StorageCache (Azure HPC Cache).

Run it with ``python -m hpc_cache_emulator --scenario FILE``. It binds to a
loopback address only and never reaches out to anything.
"""
