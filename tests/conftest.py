"""Shared pytest configuration. Keep it generic: suites add their own fixtures below."""

import sys
from pathlib import Path

import ansible.module_utils

REPO_ROOT = Path(__file__).resolve().parents[1]

# The project's module_utils, importable the way modules import them
# (from ansible.module_utils.af_inventory import ...) and directly (import af_inventory).
_MODULE_UTILS = str(REPO_ROOT / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
if _MODULE_UTILS not in sys.path:
    sys.path.append(_MODULE_UTILS)
