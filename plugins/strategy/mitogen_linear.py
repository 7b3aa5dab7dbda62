"""Mitogen's linear strategy: the project's default (ansible.cfg, `strategy = mitogen_linear`).

Mitogen keeps one Python interpreter per node for the whole run and sends modules to it, instead of
one `docker exec` or SSH session plus a new interpreter per task: a converge that changes nothing
costs a fraction of stock Ansible's (README, "Performance"). It runs the same roles unchanged, for
the testbed's `docker` connection and for SSH with sudo.

This file only loads the plug-in that the pinned `mitogen` package ships, so that ansible.cfg
needs no path into a virtual environment. Stock Ansible is one variable away:
ANSIBLE_STRATEGY=linear.
"""

from __future__ import annotations

try:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule  # noqa: F401
except ImportError as error:  # a missing or broken install: stop before any host is contacted
    from ansible.errors import AnsibleError

    raise AnsibleError(
        f"Mitogen, this project's default strategy, cannot be loaded ({error}). "
        "Install the pinned environment with `make venv` (requirements.txt pins mitogen), "
        "or run with stock Ansible: ANSIBLE_STRATEGY=linear ansible-playbook ..."
    ) from error
