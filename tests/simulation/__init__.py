# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deterministic simulator of the backend maintenance protocol: the real collection code against an
in-memory service on a virtual clock, driven by a seeded scheduler (see run.py)."""
