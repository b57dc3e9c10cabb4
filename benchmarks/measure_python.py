# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in as ansible_python_interpreter: runs the module with this Python and appends its
peak resident memory (KiB) to the file named by BENCH_RSS_FILE."""

import os
import resource
import subprocess
import sys

code = subprocess.call([sys.executable] + sys.argv[1:])
with open(os.environ["BENCH_RSS_FILE"], "a", encoding="utf-8") as handle:
    handle.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
