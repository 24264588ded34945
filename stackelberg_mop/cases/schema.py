"""The case file's schema: every section and key a case JSON may hold, its JSON type, unit and meaning.

Written once as pydantic models (strict: a number is a JSON number, a bus an integer, a flag true or
false; unknown keys are refused), from which the JSON Schema shipped for editors is generated
(``cases/case.schema.json``; point a case file's ``"$schema"`` at it for completion and checking as
you type). pydantic rather than a hand-written JSON Schema because the package already reads its
optimum tables with it, and one definition then gives the loader's checks, the editor's schema and the
documentation's field list.

`check_layout(spec)` refuses, before anything is built, an unknown section or key, naming it and its
closest valid name (``grid.import_limit: unknown key; did you mean 'import_limit_mw'?``): a misspelled
key would otherwise be ignored and silently give another model than the one written. It refuses a
missing required section or key and a value of the wrong JSON type the same way (``prosumers.bus[2]:
expected an integer``). The values' meaning (lengths, ranges, buses that exist) is checked by the
case's parts (`cases.parties`, `cases.rules`, `cases.case`), which name the field the same way.
"""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: the shipped JSON Schema is ``case.schema.json`` beside the shipped cases (not itself a case)
SCHEMA_SUFFIX = ".schema.json"


class CaseError(ValueError):
    """A case field that cannot work; the message starts with the field's name."""


Numbers = list[float]
Buses = list[int]
Flags = list[bool | Literal[0, 1]]
HourlyBound = float | Annotated[list[float], Field(min_length=24, max_length=24)] | Literal["sell", "buy"]


def _field(description: str, default=...):
    return Field(default, description=description)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Network(_Section):
    # for editors: the JSON Schema says what the validator below checks
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": [{"required": ["pandapower_case"]}, {"required": ["file"]}]})

    pandapower_case: str | None = _field("a function of pandapower.networks, e.g. 'case33bw' (or give file)", None)
    file: str | None = _field("a pandapower JSON network (pandapower.to_json), relative to the case file, or a "
                              "shipped network's name, e.g. 'case69.json' (or give pandapower_case)", None)
    s_base_mva: float = _field("MVA, the per-unit base inside network models", 10.0)
    load_scale: float = _field("factor on the network's own loads", 1.0)

    @model_validator(mode="after")
    def _one_network(self):
        if (self.pandapower_case is None) == (self.file is None):
            given = "both" if self.pandapower_case is not None else "neither"
            raise ValueError(f"network.pandapower_case, network.file: give exactly one of them (a pandapower.networks "
                             f"name or a network file), got {given}")
        return self


class Voltage(_Section):
    v_min_pu: float = _field("p.u., lower voltage limit")
    v_max_pu: float = _field("p.u., upper voltage limit")
    v_slack_pu: float = _field("p.u., the substation's voltage")


class ProsumersSection(_Section):
    bus: Buses = _field("bus of each prosumer (pandapower's 0-based index)")
    pv_capacity_mw: Numbers = _field("MW, one per prosumer")
    kappa_cny_per_mw2h: Numbers | None = _field("¥/(MW²h), shifting discomfort κ (needed where shift_fraction > 0)", None)
    shift_fraction: Numbers = _field("share of the hour's fixed load that may shift (daily sum zero)")
    wind_capacity_mw: Numbers | None = _field("MW, one per prosumer", None)
    fixed_load_peak_mw: Numbers | None = _field("MW, peak of the fixed load", None)
    elastic_max_mw: Numbers | None = _field("MW, elastic load", None)
    utility_quadratic_cny_per_mw2h: Numbers | None = _field("¥/(MW²h), a of b·d − a·d²", None)
    utility_linear_cny_per_mwh: Numbers | None = _field("¥/MWh, b of b·d − a·d²", None)
    bid_min_mw: Numbers | None = _field("MW, exchange floor", None)
    bid_max_mw: Numbers | None = _field("MW, exchange cap", None)
    curtailable: Flags | None = _field("true/false per prosumer: renewables may be curtailed", None)


class BatteriesSection(_Section):
    owner_bus: Buses = _field("bus of the owning prosumer", [])
    power_mw: Numbers = _field("MW, charge and discharge limit", [])
    p_charge_max_mw: Numbers | None = _field("MW (default power_mw)", None)
    p_discharge_max_mw: Numbers | None = _field("MW (default power_mw)", None)
    capacity_mwh: Numbers = _field("MWh", [])
    soc_min: Numbers = _field("share of capacity", [])
    soc_max: Numbers = _field("share of capacity", [])
    soc_init: Numbers = _field("share of capacity", [])
    eta_charge: Numbers = _field("efficiency", [])
    eta_discharge: Numbers = _field("efficiency", [])
    degradation_cny_per_mwh: Numbers = _field("¥/MWh, δ", [])
    regularisation_cny_per_mw2h: Numbers = _field("¥/(MW²h), ε", [])


class MOPSection(_Section):
    bus: Buses = _field("bus of each VSC terminal", [])
    s_max_mva: Numbers = _field("MVA rating", [])
    loss_coefficient: Numbers = _field("A_k", [])


class GeneratorsSection(_Section):
    bus: Buses = _field("bus of each DG", [])
    p_min_mw: Numbers | None = _field("MW (default 0)", None)
    p_max_mw: Numbers = _field("MW", [])
    q_min_mvar: Numbers = _field("Mvar", [])
    q_max_mvar: Numbers = _field("Mvar", [])
    cost_quadratic_cny_per_mw2h: Numbers = _field("¥/(MW²h), a", [])
    cost_linear_cny_per_mwh: Numbers = _field("¥/MWh, b", [])
    cost_fixed_cny_per_h: Numbers | None = _field("¥/h, c (default 0)", None)


class GridSection(_Section):
    import_limit_mw: float | None = _field("MW (absent: none)", None)
    export_limit_mw: float | None = _field("MW (absent: none)", None)


class P2PSection(_Section):
    pairs_bus: list[Annotated[Buses, Field(min_length=2, max_length=2)]] = _field("[[bus, bus], ...] pairs that may trade")
    caps_mw: Numbers = _field("MW, one per pair")
    trade_cost_cny_per_mw2h: float = _field("¥/(MW²h), γ", 10.0)


class DSASection(_Section):
    comfort_cost_cny_per_mwh: Numbers = _field("¥/MWh, per DSA")
    import_max_mw: Numbers = _field("MW, per DSA")
    export_max_mw: Numbers = _field("MW, per DSA")
    curtailable: Flags | None = _field("true/false per DSA (default false)", None)
    admm_penalty_cny_per_mw2h: Numbers = _field("¥/(MW²h), ρ per DSA")


class TariffSection(_Section):
    buy_price_cny_per_mwh: Numbers = _field("24 × ¥/MWh, HV buy (time-of-use) price")
    sell_price_cny_per_mwh: Numbers = _field("24 × ¥/MWh, HV sell price")


class PriceRulesSection(_Section):
    price_min_cny_per_mwh: float = _field("¥/MWh")
    price_max_cny_per_mwh: float = _field("¥/MWh")
    mean_cap: float | Literal["mean_buy_price"] = _field("¥/MWh, the daily mean's cap, or 'mean_buy_price'")
    lower_cny_per_mwh: HourlyBound | None = _field("a number, 24 numbers, or 'sell' / 'buy'", None)
    upper_cny_per_mwh: HourlyBound | None = _field("a number, 24 numbers, or 'sell' / 'buy'", None)


class ObjectiveSection(_Section):
    omega_economic: float = _field("ω₁")
    omega_voltage: float = _field("ω₂")
    voltage_cost_cny_per_pu: float = _field("¥ per p.u. per bus-hour")
    loss_cost_cny_per_mwh: float = _field("¥/MWh")


class ReferenceProfiles(_Section):
    load: Numbers = _field("24 × share of nominal load")
    pv: Numbers = _field("24 × share of PV capacity")
    wind: Numbers | None = _field("24 × share of wind capacity", None)


class CaseFile(_Section):
    """A case file: the network, the parties and the rules (units in the key names)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="stackelberg-mop case",
                              json_schema_extra={"$id": "https://stackelberg-mop/case.schema.json"})

    schema_: str | None = Field(None, alias="$schema", description="the JSON Schema of this file (for editors)")
    name: str = Field(description="the case's name", min_length=1)
    description: str | None = _field("free text", None)
    extends: str | None = _field("a shipped case, or a case file (a path ending .json, relative to this file), "
                                 "whose sections this file replaces", None)
    network: Network
    voltage: Voltage
    prosumers: ProsumersSection
    batteries: BatteriesSection | None = None
    mop: MOPSection | None = None
    generators: GeneratorsSection | None = None
    grid: GridSection | None = None
    p2p: P2PSection | None = None
    dsa: DSASection | None = None
    tariff: TariffSection
    price_rules: PriceRulesSection
    objective: ObjectiveSection
    reference_profiles: ReferenceProfiles


class _Partial(_Section):
    """The top-level fields of a file that extends another case (its sections are checked one by one)."""

    schema_: str | None = Field(None, alias="$schema")
    name: str = Field(min_length=1)
    description: str | None = None
    extends: str


#: section → its model
SECTION_MODELS: dict[str, type[_Section]] = {
    name: f.annotation if isinstance(f.annotation, type) else next(a for a in f.annotation.__args__ if a is not type(None))
    for name, f in CaseFile.model_fields.items() if name not in ("schema_", "name", "description", "extends")}
#: section → {key: what it holds}
SECTIONS: dict[str, dict[str, str]] = {
    name: {key: f.description for key, f in model.model_fields.items()} for name, model in SECTION_MODELS.items()}
#: top-level keys that are not sections
FIELDS = {"$schema": "the JSON Schema of this file", "name": "the case's name", "description": "free text",
          "extends": "a shipped case, or a case file (a path ending .json, relative to this file), whose sections "
                     "this file replaces"}
#: sections a case may leave out
OPTIONAL = tuple(name for name, f in CaseFile.model_fields.items() if name in SECTION_MODELS and not f.is_required())

_TYPES = {"float_type": "a number", "int_type": "an integer", "string_type": "a string", "list_type": "a list",
          "bool_type": "true or false", "model_type": "a JSON object of fields", "dict_type": "a JSON object of fields"}


def _suggest(word, valid) -> str:
    close = difflib.get_close_matches(str(word), list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {sorted(valid)}"


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _is_tag(part) -> bool:
    """pydantic's tag for a member of a union in an error's location ("float", "list[float]", ...)."""
    return isinstance(part, str) and ("[" in part or part in ("float", "int", "bool", "str", "none", "list"))


def _message(err: dict, section: str | None) -> str:
    raw = ((section,) if section else ()) + tuple(err["loc"])
    loc = tuple(p for p in raw if not _is_tag(p))
    where, kind = _where(loc), err["type"]
    got = json.dumps(err["input"], default=str)[:60]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        if not parent:
            return f"{key}: unknown section{_suggest(key, [*SECTIONS, *FIELDS])}"
        return f"{where}: unknown key{_suggest(key, SECTIONS[parent[0]])}"
    if kind == "missing":
        if len(loc) == 1:
            return f"{loc[0]}: missing" if loc[0] in FIELDS else f"missing section {loc[0]!r}"
        return f"{_where(loc[:-1])}: missing field {loc[-1]!r}"
    if len(loc) == 2 and loc[0] in SECTIONS and (len(raw) > len(loc) or kind == "list_type"):  # say what it may be
        return f"{where}: expected {SECTIONS[loc[0]][loc[1]]}, got {got}"
    if isinstance(loc[-1], int) and kind in ("bool_type", "literal_error"):
        return f"{where}: expected true or false, got {got}"
    if kind in _TYPES:
        return f"{where}: expected {_TYPES[kind]}, got {got}"
    msg = err["msg"].removeprefix("Value error, ")
    return msg if msg.startswith(f"{where}.") else f"{where}: {msg}"


def _raise(error: ValidationError, section: str | None = None) -> None:
    errors = error.errors(include_url=False)
    # the most telling error first: an unknown or missing key before the type errors it causes
    order = {"extra_forbidden": 0, "missing": 1}
    first = min(errors, key=lambda e: (order.get(e["type"], 2), len(e["loc"])))
    raise CaseError(_message(first, section)) from None


def check_layout(spec: dict, partial: bool = False) -> None:
    """CaseError naming the first unknown section or key of a case layout (with its closest valid
    name), a missing required section or key, or a value of the wrong JSON type. partial: a file that
    ``extends`` another case: only the sections it gives are checked (each must be whole)."""
    if not isinstance(spec, dict):
        raise CaseError(f"the case: expected a JSON object of sections, got {type(spec).__name__}")
    for key in spec:
        if not isinstance(key, str):
            raise CaseError(f"{key!r}: a section's name is a string")
        if key not in FIELDS and key not in SECTIONS:
            raise CaseError(f"{key}: unknown section{_suggest(key, [*SECTIONS, *FIELDS])}")
    if not partial:
        try:
            CaseFile.model_validate(spec)
        except ValidationError as err:
            _raise(err)
        return
    try:
        _Partial.model_validate({key: value for key, value in spec.items() if key in FIELDS})
    except ValidationError as err:
        _raise(err)
    for key, value in spec.items():
        if key in SECTIONS:
            try:
                SECTION_MODELS[key].model_validate(value)
            except ValidationError as err:
                _raise(err, key)


def json_schema() -> dict:
    """The JSON Schema of a case file (what ``cases/case.schema.json`` holds)."""
    schema = CaseFile.model_json_schema(by_alias=True)
    # a file that extends another case gives only the sections it replaces
    schema["anyOf"] = [{"required": ["extends", "name"]}, {"required": schema.pop("required")}]
    return schema


def write_json_schema(path) -> None:
    """Write `json_schema()` to `path` (how the shipped ``cases/case.schema.json`` is made)."""
    from pathlib import Path

    Path(path).write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")


def markdown_table() -> str:
    """The schema as the table of the documentation's case-file page (a test keeps the page equal to it)."""
    rows = ["| section | key | JSON type | unit and meaning |", "|---|---|---|---|"]
    props = json_schema()

    def kind(node: dict) -> str:
        if "anyOf" in node:
            return " or ".join(kind(a) for a in node["anyOf"] if a.get("type") != "null")
        if "$ref" in node:
            return "object"
        if "const" in node or "enum" in node:
            return " / ".join(repr(v).replace("'", '"') for v in node.get("enum", [node.get("const")]))
        if node.get("type") == "array":
            n = node.get("minItems")
            item = kind(node.get("items", {}))
            return f"{n} × {item}" if n and n == node.get("maxItems") else f"list of {item}"
        return {"number": "number", "integer": "integer", "string": "string", "boolean": "true/false"}.get(
            node.get("type"), "?")

    for key, text in FIELDS.items():
        need = " (required)" if key == "name" else ""
        rows.append(f"| (top level) | `{key}`{need} | string | {text} |")
    required = set(next(a["required"] for a in props["anyOf"] if "extends" not in a["required"]))
    for section, model in SECTION_MODELS.items():
        fields = model.model_json_schema()["properties"]
        first = True
        for key, f in model.model_fields.items():
            name = f"`{section}`" + ("" if section in required else " (optional)") if first else ""
            need = " (required)" if f.is_required() else ""
            default = "" if f.is_required() or f.default in (None, []) else f" (default {f.default:g})"
            rows.append(f"| {name} | `{key}`{need} | {kind(fields[key])} | {f.description}{default} |")
            first = False
    return "\n".join(rows)
