"""The source adapters `funnelboard load --source NAME` knows, by name.

Each name points at a module under `etl/sources/` that defines
`translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation`
(the contract is in `etl/sources/base.py`). Modules are imported only when chosen, so one
adapter's import cost or bug never touches another's load.
"""

from __future__ import annotations

import importlib

from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import Adapter

# name -> module; "canonical" is also the loader's native SQL path (see etl/load.py).
ADAPTERS: dict[str, str] = {
    "canonical": "funnelboard.etl.sources.canonical",
    "wide": "funnelboard.etl.sources.wide",
    "salesforce": "funnelboard.etl.sources.salesforce",
    "hubspot": "funnelboard.etl.sources.hubspot",
    "pipedrive": "funnelboard.etl.sources.pipedrive",
}


def get_adapter(name: str) -> Adapter:
    """The translate function of adapter `name`; UserError for a name that is not an adapter."""
    module_name = ADAPTERS.get(name)
    if module_name is None:
        raise UserError(f"unknown --source '{name}': expected one of {', '.join(sorted(ADAPTERS))}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UserError(f"--source '{name}' is not available in this version of funnelboard.") from None
    return module.translate
