"""Print the pinned requirements of the lock that the current interpreter does not have yet.

The notebook image is the worker image plus what only the notebook needs: this lists that part
(used in images/Dockerfile, stage env-notebook; the input is the lock without hashes).
"""

import importlib.metadata
import re
import sys


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


installed = {normalise(dist.metadata["Name"]) for dist in importlib.metadata.distributions()}
with open(sys.argv[1]) as constraints:
    for raw in constraints:
        line = raw.strip()
        if "==" in line and not line.startswith("#") and normalise(line.split("==")[0]) not in installed:
            print(line)
