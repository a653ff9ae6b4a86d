"""`pip install .` (the README's first command) ships every package: none is left out of pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tops = {name.split(".")[0] for name in listed}
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in tops
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "packages missing from [tool.setuptools] packages"


def test_every_served_asset_is_listed_for_the_wheel():
    """Dash serves assets/ from the installed package: a file type missing from package-data would be
    absent after `pip install .` (the dashboard would then fetch plotly's full bundle, or lose its styles)."""
    import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["assets"]
    served = [p.name for p in (ROOT / "assets").iterdir() if p.is_file() and p.suffix in (".css", ".js")]
    assert served and all(any(fnmatch.fnmatch(name, pat) for pat in patterns) for name in served), served
