"""The model layer: `.sql` files compiled by sqlglot, checked, ordered by dependency and built.

Each model is one SELECT in `queries/<layer>/<name>.sql` with its metadata beside it in
`<name>.toml` (description, grain, columns, parameters, data tests). Loading a model parses
it once and checks: exactly one SELECT; no `*` in a mart's final projections; every table it
reads is a source or another model (CTE names excluded); its declared parameters equal the
`$placeholders` it uses.

Configured lists enter the SQL as AST rewrites, never as text: a projection that mentions
`__attr__` is repeated once per attribute column, one that mentions `__stage__` /
`__stage_order__` once per funnel stage, one that mentions `__outcome__` once per outcome
(the marker also substitutes inside the alias). Inside `greatest` and `least` an argument that
mentions a marker is repeated instead (`greatest(week___stage__)` is the latest of the stages'
weeks), wherever the call stands; `coalesce(l.__attr__, e.__attr__) as __attr__` stays a
projection repeated per attribute. So is a grouping set that mentions one (`grouping sets
((created_week), (week___stage__))` groups by each stage's week in turn). Single identifiers chosen at run time
(`__segment__`, ...) are bound through `bind_identifiers` from an allow-list, quoted.
"""

from __future__ import annotations

import graphlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import sqlglot
from sqlglot import exp

from funnelboard.core.errors import UserError

LAYERS = ("staging", "intermediate", "marts")
QUERY_LAYER = "metrics"
# Steps several queries share (dbt's ephemeral models): never built; a query that reads one by name
# gets it inlined as a CTE when it is parsed, its parameters added to the query's.
SHARED_LAYER = "shared"
SOURCES = frozenset(
    {"raw_events", "raw_leads", "quarantine", "load_ledger", "meta", "cfg_stages", "cfg_reasons", "cfg_sla", "cfg_settings"}
)
MARKERS = ("__attr__", "__stage__", "__stage_order__", "__outcome__")
# How a load that appends rows refreshes a built model (the `refresh` key of its .toml, "full" when
# absent): "by_lead" models hold rows that each depend only on their own lead's input rows and the
# configuration, so only the leads a load touched are rebuilt; "window" models are by_lead but for
# aggregates over every lead (a CTE such as the latest event) that decide which rows are kept and
# fill some columns (`Window`); "full" models are rebuilt whole.
REFRESH = ("by_lead", "window", "full")
# The sources that hold rows of many leads, split by lead_id (a by_lead model may read them); the
# cfg_* seeds are the configuration, read whole.
LEAD_SOURCES = frozenset({"raw_events", "raw_leads"})
CONFIG_SOURCES = frozenset({"cfg_stages", "cfg_reasons", "cfg_sla", "cfg_settings"})
# How a built model is kept (the `materialized` key of its .toml): a "table" in the warehouse (the
# default), a "view" (staging's default), or a "temporary" table that lives only while the models
# are built and is never stored: an intermediate step that only by_lead models read, so a refresh
# needs only its rows of the touched leads, which it computes anyway.
MATERIALIZED = ("table", "view", "temporary")


class ModelError(UserError):
    """A model file that breaks a rule; the message names the model and the rule."""


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    path: Path
    tree: exp.Query
    deps: tuple[str, ...]
    params: tuple[str, ...]
    meta: dict = field(compare=False)

    @property
    def description(self) -> str:
        return self.meta.get("description", "")

    @property
    def materialized(self) -> str:
        return self.meta.get("materialized", "view" if self.layer == "staging" else "table")

    @property
    def refresh(self) -> str:
        return self.meta.get("refresh", "full")


@dataclass(frozen=True)
class Expansion:
    """The configured lists the markers expand to."""

    attributes: tuple[str, ...]
    stages: tuple[str, ...]
    outcomes: tuple[str, ...]
    score: str | None = None
    amount: str | None = None
    sla_by: str | None = None  # [sla] by: the segment column whose values may have their own stage SLA
    close_date: str | None = None
    deal_currency: str | None = None
    forecast: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The column markers and the configured column each stands for (None: not configured)."""
        return {"__score__": self.score, "__amount__": self.amount, "__stage_sla_by__": self.sla_by, "__close_date__": self.close_date,
                "__deal_currency__": self.deal_currency, "__forecast__": self.forecast}


def queries_root() -> Path:
    return Path(str(resources.files("funnelboard.queries")))


def load_models(root: Path | None = None, layers: tuple[str, ...] = LAYERS) -> dict[str, Model]:
    """Parse and check every model under root; ModelError names the first model that breaks a rule."""
    root = root or queries_root()
    models: dict[str, Model] = {}
    for layer in layers:
        for path in sorted((root / layer).glob("*.sql")):
            model = parse_model(path, layer)
            if model.name in models:
                raise ModelError(f"model {model.name} is defined twice ({models[model.name].path} and {path}).")
            models[model.name] = model
    if layers == LAYERS:
        for model in models.values():
            unknown = [d for d in model.deps if d not in models and d not in SOURCES]
            if unknown:
                raise ModelError(f"model {model.name} reads '{unknown[0]}', which is neither a model nor a source table.")
        for model in models.values():
            _check_refresh(model, models)
        build_order(models)
    return models


def models_fingerprint(root: Path | None = None) -> str:
    """A hash of every built model's SQL and metadata: a warehouse built from other models must be rebuilt."""
    import hashlib

    root = root or queries_root()
    digest = hashlib.sha256()
    for layer in (*LAYERS, SHARED_LAYER):
        for path in sorted((root / layer).glob("*.*")):
            if path.suffix in (".sql", ".toml"):
                digest.update(f"{layer}/{path.name}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def parse_model(path: Path, layer: str) -> Model:
    name = path.stem
    try:
        statements = [s for s in sqlglot.parse(path.read_text("utf-8"), dialect="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise ModelError(f"model {name} does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"model {name} must be exactly one SELECT statement, found {len(statements)} statement(s).")
    tree = statements[0]
    shared: dict[str, Model] = {}
    if layer != SHARED_LAYER:
        tree, shared = inline_shared(tree, path.parent.parent)
    if layer == "marts" and any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in tree.selects):
        raise ModelError(f"model {name} is a mart and selects *: name its columns, they are its promise.")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    deps = tuple(sorted({t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes}))
    used = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder) if p.name}))
    meta_path = path.with_suffix(".toml")
    if not meta_path.is_file():
        raise ModelError(f"model {name} has no metadata file {meta_path.name} beside it.")
    meta = tomllib.loads(meta_path.read_text("utf-8"))
    for key in ("description", "grain", "columns"):
        if key not in meta:
            raise ModelError(f"model {name}'s metadata lacks '{key}'.")
    declared = tuple(sorted(meta.get("parameters", {})))
    if shared:  # the shared steps' parameters are documented with them; the reader declares its own
        own = {p.name for p in statements[0].find_all(exp.Placeholder) if p.name}
        declared = tuple(sorted(set(declared) | (set(used) - own)))
    if declared != used:
        missing = sorted(set(used) - set(declared))
        unused = sorted(set(declared) - set(used))
        what = f"uses undeclared parameter ${missing[0]}" if missing else f"declares parameter {unused[0]} but never uses it"
        raise ModelError(f"model {name} {what}.")
    return Model(name=name, layer=layer, path=path, tree=tree, deps=deps, params=used, meta=meta)


def shared_models(root: Path | None = None) -> dict[str, Model]:
    """The shared steps of queries/shared, by name."""
    root = root or queries_root()
    return {path.stem: parse_model(path, SHARED_LAYER) for path in sorted((root / SHARED_LAYER).glob("*.sql"))}


def inline_shared(tree: exp.Query, root: Path) -> tuple[exp.Query, dict[str, Model]]:
    """The query with each shared step it reads by name prepended as a CTE (the step's own SELECT),
    and the steps inlined. A CTE of the query's own with a step's name shadows the step."""
    own = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    read = {t.name for t in tree.find_all(exp.Table)} - own
    # only the steps it reads are parsed: most queries read none, and parsing costs ~0.1 s a step
    steps = {p.stem: p for p in (root / SHARED_LAYER).glob("*.sql")} if read and (root / SHARED_LAYER).is_dir() else {}
    used = {name: parse_model(steps[name], SHARED_LAYER) for name in sorted(read & set(steps))}
    if not used:
        return tree, {}
    tree = tree.copy()
    ctes = [exp.CTE(this=m.tree.copy(), alias=exp.TableAlias(this=exp.to_identifier(name))) for name, m in used.items()]
    existing = tree.args.get("with_")
    tree.set("with_", exp.With(expressions=ctes + (list(existing.expressions) if existing else [])))
    return tree, used


def _check_refresh(model: Model, models: dict[str, Model]) -> None:
    """A by_lead model has a lead_id column and reads only by_lead models, the raw tables split by
    lead and the configuration: whatever else it read could change its rows when other leads change.
    A window model follows the rules of `window_parts`."""
    if model.refresh not in REFRESH:
        raise ModelError(f"model {model.name} has refresh = \"{model.meta['refresh']}\": use \"by_lead\", \"window\" or \"full\".")
    if model.materialized not in MATERIALIZED:
        raise ModelError(f"model {model.name} has materialized = \"{model.materialized}\": use \"table\", \"view\" or \"temporary\".")
    if model.materialized == "temporary":
        if model.refresh != "by_lead":
            raise ModelError(f"model {model.name} is temporary but not refresh = \"by_lead\": make it a \"table\".")
        readers = [m.name for m in models.values() if model.name in m.deps and m.refresh != "by_lead"]
        if readers:
            raise ModelError(f"model {model.name} is temporary but {readers[0]} reads it whole: make it a \"table\".")
    if model.refresh == "window":
        window_parts(model, models)
    if model.refresh != "by_lead":
        return
    if "lead_id" not in model.meta["columns"]:
        raise ModelError(f"model {model.name} has refresh = \"by_lead\" but no lead_id column: make it \"full\".")
    for dep in model.deps:
        if not _split_by_lead(dep, models) and dep not in CONFIG_SOURCES:
            raise ModelError(
                f"model {model.name} has refresh = \"by_lead\" but reads {dep}, which is not split by lead: make it \"full\"."
            )


def _split_by_lead(table: str, models: dict[str, Model]) -> bool:
    return table in LEAD_SOURCES or (table in models and models[table].refresh == "by_lead")


@dataclass(frozen=True)
class Window:
    """A window model's parts: the one table split by lead it reads (its input), its global CTEs (an
    aggregate without GROUP BY over every lead's rows, read only by the final SELECT: they decide
    which rows it keeps and fill the columns that are bare columns of theirs) and its unique key."""

    input: str
    globals: tuple[str, ...]
    key: tuple[str, ...]


def window_parts(model: Model, models: dict[str, Model]) -> Window:
    """The parts of a window model, or a ModelError naming the rule it breaks. With these rules, once
    the global CTEs are computed, every row depends only on its own lead's rows, and the global
    values enter a row only as the columns that are bare columns of a global CTE."""
    def refuse(why: str) -> ModelError:
        return ModelError(f"model {model.name} has refresh = \"window\" but {why}: make it \"full\".")

    if "lead_id" not in model.meta["columns"]:
        raise refuse("no lead_id column")
    split = [d for d in model.deps if _split_by_lead(d, models)]
    other = [d for d in model.deps if d not in split and d not in CONFIG_SOURCES]
    if other:
        raise refuse(f"reads {other[0]}, which is not split by lead")
    if len(split) != 1:
        raise refuse(f"reads {len(split)} tables split by lead, not one")
    root = model.tree
    if not isinstance(root, exp.Select):
        raise refuse("its query is not one SELECT")
    ctes = {c.alias_or_name: c.this for c in root.ctes}

    def reaches(name: str, seen: frozenset = frozenset()) -> bool:
        read = {t.name for t in ctes[name].find_all(exp.Table)}
        return split[0] in read or any(r in ctes and r not in seen and reaches(r, seen | {name}) for r in read)

    globals_ = tuple(
        name for name, body in ctes.items()
        if isinstance(body, exp.Select) and not body.args.get("group") and not body.args.get("having")
        and any(a.find_ancestor(exp.Window) is None for p in body.expressions for a in p.find_all(exp.AggFunc))
        and reaches(name)
    )
    if not globals_:
        raise refuse("has no CTE that aggregates every lead's rows")
    aliases = set()
    for table in root.find_all(exp.Table):
        if table.name in globals_ and not table.db:
            if table.parent_select is not root:
                raise refuse(f"reads its global {table.name} elsewhere than in its final SELECT")
            aliases.add(table.alias_or_name)
    for arg in ("group", "having", "distinct", "limit", "qualify"):
        if root.args.get(arg):
            raise refuse(f"its final SELECT has {arg.upper()}")
    for projection in root.expressions:
        if projection.find(exp.Window, exp.AggFunc):
            raise refuse("its final SELECT aggregates")
        bare = projection.this if isinstance(projection, exp.Alias) else projection
        if any(c.table in aliases for c in projection.find_all(exp.Column)) and not isinstance(bare, exp.Column):
            raise refuse(f"its column {projection.alias_or_name} computes with a global")
    key = next((tuple(k) for k in model.meta.get("tests", {}).get("unique", []) if "lead_id" in k), None)
    if key is None:
        raise refuse("declares no unique key with lead_id in [tests]")
    return Window(input=split[0], globals=globals_, key=key)


def build_order(models: dict[str, Model]) -> list[Model]:
    graph = {name: {d for d in m.deps if d in models} for name, m in models.items()}
    try:
        return [models[n] for n in graphlib.TopologicalSorter(graph).static_order()]
    except graphlib.CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}.") from None


def expand(tree: exp.Query, lists: Expansion) -> exp.Query:
    """Repeat every projection that mentions a marker once per item of its configured list."""
    tree = tree.copy()
    for call in list(tree.find_all(exp.Greatest, exp.Least)):
        args = [call.this, *call.expressions]
        if any(_markers_in(a) for a in args):
            expanded = [item for a in args for item in _expand_projection(a, lists, bare=True)]
            call.set("this", expanded[0])
            call.set("expressions", expanded[1:])
    for sets in list(tree.find_all(exp.GroupingSets)):
        sets.set("expressions", [item for s in sets.expressions for item in _expand_projection(s, lists, bare=True)])
    targets = lists.columns()
    for column in list(tree.find_all(exp.Column)):
        if column.name in targets:
            target = targets[column.name]
            column.replace(exp.column(target, table=column.table or None, quoted=True) if target else exp.Null())
    for select in list(tree.find_all(exp.Select)):
        if _inside_projection(select):
            continue  # a scalar subquery: the projection around it is repeated and substituted whole
        projections: list[exp.Expression] = []
        for projection in select.expressions:
            projections.extend(_expand_projection(projection, lists))
        select.set("expressions", projections)
    leftover = [c for c in tree.find_all(exp.Column) if c.name in MARKERS]
    if leftover:
        raise ModelError(f"marker {leftover[0].name} may only appear inside a projection; found it in '{leftover[0].parent_select.sql('duckdb')[:80]}...'.")
    return tree


def _inside_projection(node: exp.Expression) -> bool:
    while node.parent is not None:
        if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
            return True
        node = node.parent
    return False


def _markers_in(projection: exp.Expression) -> set[str]:
    found = set()
    for column in projection.find_all(exp.Column):
        for marker in MARKERS:
            if column.name == marker or (marker != "__stage_order__" and marker in column.name):
                found.add(marker)
    return found


def _expand_projection(projection: exp.Expression, lists: Expansion, *, bare: bool = False) -> list[exp.Expression]:
    """One copy per item of the marker's list; bare: an argument, not a projection (no alias needed)."""
    found = _markers_in(projection)
    if not found:
        return [projection]
    if "__attr__" in found:
        return [_substitute(projection, "__attr__", a, exact=None, bare=bare) for a in lists.attributes]
    if found & {"__stage__", "__stage_order__"}:
        return [
            _substitute(projection, "__stage__", stage, exact=exp.Literal.string(stage), order=order, bare=bare)
            for order, stage in enumerate(lists.stages, start=1)
        ]
    return [_substitute(projection, "__outcome__", o, exact=exp.Literal.string(o), bare=bare) for o in lists.outcomes]


def _substitute(projection: exp.Expression, marker: str, name: str, *, exact, order: int | None = None, bare: bool = False) -> exp.Expression:
    """One copy of a projection for one item: the marker column becomes the item, names containing it are renamed."""
    copy = projection.copy()
    if isinstance(copy, exp.Column) and copy.name == marker and exact is None:
        return exp.column(name, table=copy.table or None, quoted=True)
    for column in list(copy.find_all(exp.Column)):
        if column.name == "__stage_order__" and order is not None:
            column.replace(exp.Literal.number(order))
        elif column.name == marker:
            column.replace(exact.copy() if exact is not None else exp.column(name, table=column.table or None, quoted=True))
        elif marker in column.name:
            column.set("this", exp.to_identifier(column.name.replace(marker, name), quoted=True))
    if isinstance(copy, exp.Alias) and marker in copy.alias:
        copy.set("alias", exp.to_identifier(copy.alias.replace(marker, name), quoted=True))
    elif not isinstance(copy, exp.Column) and not bare:
        raise ModelError(f"a projection repeated per {marker} needs an alias containing {marker}: '{projection.sql('duckdb')}'.")
    return copy


def bind_identifiers(tree: exp.Query, names: dict[str, str]) -> exp.Query:
    """Replace marker columns (e.g. `__segment__`) by quoted identifiers chosen from an allow-list."""
    tree = tree.copy()
    for column in list(tree.find_all(exp.Column)):
        if column.name in names:
            column.set("this", exp.to_identifier(names[column.name], quoted=True))
    return tree


def render(model: Model, lists: Expansion, dialect: str = "duckdb") -> str:
    return expand(model.tree, lists).sql(dialect=dialect, pretty=True)
