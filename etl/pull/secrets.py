"""A pull's settings and secrets: from the environment or a file, never from the command line.

`FUNNELBOARD_<CRM>_<NAME>` holds a value; for a secret, `FUNNELBOARD_<CRM>_<NAME>_FILE` may name a
file holding it instead (a Docker or systemd credential file), so the secret is in neither argv
nor the shell history. A `Secret` prints as `***`: it can be formatted into a log line or an
error by mistake without leaking; only `reveal()` gives the value, for the one header that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from funnelboard.core.errors import UserError


class Secret:
    """A token, password or key; str() and repr() never show it."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str):
        self.name = name
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name}=***)"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a file or a child process by accident
        raise TypeError("a Secret is not picklable")


def env_name(crm: str, name: str) -> str:
    return f"FUNNELBOARD_{crm.upper()}_{name.upper()}"


def setting(crm: str, name: str, default: str | None = None) -> str | None:
    """A non-secret setting (a base URL, a username, a pipeline id): the environment, else `default`."""
    value = os.environ.get(env_name(crm, name), "").strip()
    return value or default


def secret(crm: str, name: str, *, required: bool = True, what: str = "") -> Secret | None:
    """The secret `name` of `crm` from `FUNNELBOARD_<CRM>_<NAME>` or the file `..._FILE` names."""
    var = env_name(crm, name)
    value = os.environ.get(var, "").strip()
    file_var = f"{var}_FILE"
    path_text = os.environ.get(file_var, "").strip()
    if not value and path_text:
        path = Path(path_text).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"cannot read {file_var} '{path}': {exc.strerror or type(exc).__name__}.") from None
        if not value:
            raise UserError(f"{file_var} names '{path}', which is empty: put the {what or name.lower()} in it.")
    if not value:
        if not required:
            return None
        raise UserError(
            f"set {var} (or {file_var}, naming a file that holds it) to the {what or name.lower()}; "
            "funnelboard never takes a secret on the command line."
        )
    return Secret(var, value)
