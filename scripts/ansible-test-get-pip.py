# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip.py that ansible-test downloads from a host this network cannot reach.

ansible-test runs it as ``python get_pip.py [pip install options] pip==X``:
install pip from the interpreter's bundled wheel (ensurepip), then let that
pip install what was asked from PyPI.
"""

import subprocess
import sys

DROPPED = ("--no-setuptools", "--no-wheel")

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + [a for a in sys.argv[1:] if a not in DROPPED]))
