"""One import root: `pip install .` puts `funnelboard` and nothing else at the top of site-packages,
the wheel carries every package, model and asset, and the editable install (the README's test
command) maps the repository's top-level folders to the same names."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FOLDERS = ("etl", "warehouse", "dashboard", "queries", "assets")
# Python that fails when a folder's name is importable at the top level of sys.path.
NOT_AT_TOP_LEVEL = (
    f"for name in {FOLDERS!r}:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except ModuleNotFoundError:\n"
    "        continue\n"
    "    raise SystemExit(name + ' is importable at the top level')\n"
)


def test_every_python_package_is_listed_for_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join((package, *init.parent.relative_to(ROOT / folder).parts)))
    assert found - listed == set(), "packages missing from [tool.setuptools] packages"
    assert {f"funnelboard.{f}" for f in FOLDERS} <= set(mapping), "a top-level folder is not mapped under funnelboard"


def test_every_served_asset_is_listed_for_the_wheel():
    """Dash serves assets/ from the installed package: a file type missing from package-data would be
    absent after `pip install .` (the dashboard would then fetch plotly's full bundle, or lose its styles)."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["funnelboard.assets"]
    served = [p.name for p in (ROOT / "assets").iterdir() if p.is_file() and p.suffix in (".css", ".js")]
    assert served and all(any(fnmatch.fnmatch(name, pat) for pat in patterns) for name in served), served


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__", "node_modules", ".pytest_cache", ".hypothesis", "*.duckdb", "funnelboard-demo"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(source)],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("funnelboard-*.whl")
    return built


def _top_level(names: list[str]) -> set[str]:
    return {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}


@pytest.mark.slow
def test_the_wheel_installs_one_import_root_that_works(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert _top_level(names) == {"funnelboard"}
    for expected in ("funnelboard/queries/marts/fct_leads.sql", "funnelboard/assets/style.css", "funnelboard/core/default_funnel.toml",
                     "funnelboard/dashboard/pages/weekly.py", "funnelboard/etl/sources/salesforce.py"):
        assert expected in names, expected

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # what pip does for a pure wheel, without a pip in the fresh venv
    # The dependencies come from this test run's environment, after the fresh venv's own packages;
    # a plain path line, so the editable install's finder there is not loaded.
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__") == ["funnelboard"]
    probe = (
        "import importlib, importlib.resources as r, funnelboard\n"
        "for m in ('funnelboard.cli', 'funnelboard.dashboard.app', 'funnelboard.warehouse.metrics', 'funnelboard.etl.load'):\n"
        "    assert importlib.import_module(m).__file__.startswith(funnelboard.__path__[0]), m\n"
        "assert r.files('funnelboard.queries').joinpath('marts', 'fct_leads.sql').is_file()\n"
        + NOT_AT_TOP_LEVEL
        + "print(funnelboard.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(site))
    cli = subprocess.run([python, "-m", "funnelboard", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert cli.returncode == 0 and "serve" in cli.stdout, cli.stderr


def test_the_editable_install_maps_the_folders_under_funnelboard(tmp_path):
    """The README's test command installs with -e: the repository's folders answer to funnelboard.* from
    anywhere, and not under their own names."""
    probe = (
        "import importlib, funnelboard.etl, funnelboard.dashboard, funnelboard.queries\n"
        "print(funnelboard.etl.__file__, funnelboard.dashboard.__file__)\n"
        + NOT_AT_TOP_LEVEL
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    etl_file, dashboard_file = done.stdout.split()
    assert Path(etl_file) == ROOT / "etl" / "__init__.py"
    assert Path(dashboard_file) == ROOT / "dashboard" / "__init__.py"
