"""Mitogen's linear strategy: the project's default (ansible.cfg, `strategy = mitogen_linear`).

Mitogen keeps one Python interpreter per node for the whole run and sends modules to it, instead of
one `docker exec` or SSH session plus a new interpreter per task: a converge that changes nothing
costs a fraction of stock Ansible's (README, "Performance"). It runs the same roles unchanged, for
the testbed's `docker` connection and for SSH with sudo.

This file loads the plug-in that the pinned `mitogen` package ships, so that ansible.cfg needs no
path into a virtual environment, and does two things once per run that Ansible and Mitogen would
otherwise do in every forked task worker (below). Stock Ansible is one variable away: ANSIBLE_STRATEGY=linear.
"""

from __future__ import annotations

try:
    import ansible_mitogen.planner
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinear
except ImportError as error:  # a missing or broken install: stop before any host is contacted
    from ansible.errors import AnsibleError

    raise AnsibleError(
        f"Mitogen, this project's default strategy, cannot be loaded ({error}). "
        "Install the pinned environment with `make venv` (requirements.txt pins mitogen), "
        "or run with stock Ansible: ANSIBLE_STRATEGY=linear ansible-playbook ..."
    ) from error

from ansible.collections.list import list_collection_dirs
from ansible.plugins.loader import filter_loader, test_loader

# Mitogen's planner lists every installed collection (reading each one's metadata) the first time a
# worker runs a collection module, and caches the answer in that worker; Ansible forks a new worker for
# every task and host, so the listing ran for every community.* / ansible.posix task: about a third of
# the controller's CPU in a no-op converge with the `ansible` package's bundled collections. The
# collections installed do not change during a run: list them once, in the strategy's process, before
# it forks its workers (they inherit the list).
_collection_dirs: frozenset[str] | None = None


def _list_collection_dirs_once() -> frozenset[str]:
    global _collection_dirs  # noqa: PLW0603 - a per-run cache shared with the forked workers
    if _collection_dirs is None:
        _collection_dirs = frozenset(path.decode("utf-8") for path in list_collection_dirs())
    return _collection_dirs


def _load_collections(invocation) -> None:
    """ansible_mitogen.planner._load_collections, from the per-run list."""
    invocation._extra_sys_paths.update(_list_collection_dirs_once())


ansible_mitogen.planner._load_collections = _load_collections


def _load_jinja_plugins() -> None:
    """Load the filter and test plug-ins Ansible ships (it reads every file of them the first time a
    template asks for one): once here, instead of in every worker that templates a task's arguments."""
    for loader in (filter_loader, test_loader):
        for _plugin in loader.all():
            pass


class StrategyModule(MitogenLinear):
    def run(self, iterator, play_context):
        # Here, in the strategy's own process: every worker forked from now on inherits both.
        _list_collection_dirs_once()
        _load_jinja_plugins()
        return super().run(iterator, play_context)
