"""The one bounded wait of the project's info modules (condor_pool_info, k8s_cluster_info).

Gather facts, evaluate the conditions, sleep, again, until every condition holds and every query worked, or
the timeout passes. The caller gives how to gather and how to judge; the clock and the sleep are injected so
that the loop is unit-tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


def wait_until(
    gather: Callable[[], tuple[dict, dict[str, str]]],
    unmet_of: Callable[[dict, Mapping], list[str]],
    conditions: Mapping | None,
    *,
    timeout: float = 120,
    poll_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Gather facts until unmet_of(facts, conditions) is empty (and every query worked) or timeout passes.

    gather() returns (facts, errors by query). Without conditions, gathers once. Returns {"ready", "facts",
    "unmet", "errors", "waited"}; "ready" is False on timeout (or when a query failed and there are no
    conditions to wait for).
    """
    conditions = {k: v for k, v in (conditions or {}).items() if v is not None}
    start = clock()
    while True:
        facts, errors = gather()
        unmet = unmet_of(facts, conditions)
        waited = max(0.0, clock() - start)
        if not errors and not unmet:
            return {"ready": True, "facts": facts, "unmet": [], "errors": {}, "waited": round(waited, 3)}
        if not conditions or waited >= timeout:
            return {"ready": False, "facts": facts, "unmet": unmet, "errors": errors, "waited": round(waited, 3)}
        sleep(max(0.0, min(poll_interval, timeout - waited)))
