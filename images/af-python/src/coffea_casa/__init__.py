"""The coffea-casa analysis facility's Dask cluster class (and the worker launcher of its images).

``CoffeaCasaCluster`` is imported lazily: the worker image runs :mod:`coffea_casa.worker_launcher`,
which needs neither dask-jobqueue nor the cluster's configuration.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .settings import SiteSettings

if TYPE_CHECKING:
    from .cluster import CoffeaCasaCluster

__all__ = ["CoffeaCasaCluster", "SiteSettings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "CoffeaCasaCluster":
        return importlib.import_module(".cluster", __name__).CoffeaCasaCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
