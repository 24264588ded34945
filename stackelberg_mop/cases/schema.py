"""The case file's layout: every section and key a case JSON may hold, with its unit and meaning.

`check_layout(spec)` refuses, before anything is built, a section or key that is not here, naming it
and its closest valid name (``grid.import_limit: unknown key; did you mean 'import_limit_mw'?``):
a misspelled key would otherwise be ignored and silently give another model than the one written.
The values themselves (types, lengths, ranges, buses) are checked by the case's parts
(`cases.case`), which name the field the same way.
"""

from __future__ import annotations

import difflib


class CaseError(ValueError):
    """A case field that cannot work; the message starts with the field's name."""


#: section → {key: what it holds}; a section marked optional may be left out
SECTIONS: dict[str, dict[str, str]] = {
    "network": {"pandapower_case": "a function of pandapower.networks, e.g. 'case33bw'",
                "s_base_mva": "MVA, the per-unit base inside network models (default 10)",
                "load_scale": "factor on the network's own loads (default 1)"},
    "voltage": {"v_min_pu": "p.u., lower voltage limit", "v_max_pu": "p.u., upper voltage limit",
                "v_slack_pu": "p.u., the substation's voltage"},
    "prosumers": {"bus": "bus of each prosumer (pandapower's 0-based index)",
                  "pv_capacity_mw": "MW, one per prosumer", "kappa_cny_per_mw2h": "¥/(MW²h), shifting discomfort κ",
                  "shift_fraction": "share of the hour's fixed load that may shift (daily sum zero)",
                  "wind_capacity_mw": "MW, one per prosumer", "fixed_load_peak_mw": "MW, peak of the fixed load",
                  "elastic_max_mw": "MW, elastic load", "utility_quadratic_cny_per_mw2h": "¥/(MW²h), a of b·d − a·d²",
                  "utility_linear_cny_per_mwh": "¥/MWh, b of b·d − a·d²", "bid_min_mw": "MW, exchange floor",
                  "bid_max_mw": "MW, exchange cap", "curtailable": "true/false: renewables may be curtailed"},
    "batteries": {"owner_bus": "bus of the owning prosumer", "power_mw": "MW, charge and discharge limit",
                  "p_charge_max_mw": "MW", "p_discharge_max_mw": "MW", "capacity_mwh": "MWh",
                  "soc_min": "share of capacity", "soc_max": "share of capacity", "soc_init": "share of capacity",
                  "eta_charge": "efficiency", "eta_discharge": "efficiency",
                  "degradation_cny_per_mwh": "¥/MWh, δ", "regularisation_cny_per_mw2h": "¥/(MW²h), ε"},
    "mop": {"bus": "bus of each VSC terminal", "s_max_mva": "MVA rating", "loss_coefficient": "A_k"},
    "generators": {"bus": "bus of each DG", "p_min_mw": "MW (default 0)", "p_max_mw": "MW",
                   "q_min_mvar": "Mvar", "q_max_mvar": "Mvar", "cost_quadratic_cny_per_mw2h": "¥/(MW²h), a",
                   "cost_linear_cny_per_mwh": "¥/MWh, b", "cost_fixed_cny_per_h": "¥/h, c (default 0)"},
    "grid": {"import_limit_mw": "MW (absent: none)", "export_limit_mw": "MW (absent: none)"},
    "p2p": {"pairs_bus": "[[bus, bus], ...] pairs that may trade", "caps_mw": "MW, one per pair",
            "trade_cost_cny_per_mw2h": "¥/(MW²h), γ (default 10)"},
    "dsa": {"comfort_cost_cny_per_mwh": "¥/MWh", "import_max_mw": "MW", "export_max_mw": "MW",
            "curtailable": "true/false per DSA", "admm_penalty_cny_per_mw2h": "¥/(MW²h), ρ per DSA"},
    "tariff": {"buy_price_cny_per_mwh": "24 × ¥/MWh, HV buy (time-of-use) price",
               "sell_price_cny_per_mwh": "24 × ¥/MWh, HV sell price"},
    "price_rules": {"price_min_cny_per_mwh": "¥/MWh", "price_max_cny_per_mwh": "¥/MWh",
                    "mean_cap": "¥/MWh or 'mean_buy_price'",
                    "lower_cny_per_mwh": "a number, 24 numbers, or 'sell' / 'buy'",
                    "upper_cny_per_mwh": "a number, 24 numbers, or 'sell' / 'buy'"},
    "objective": {"omega_economic": "ω₁", "omega_voltage": "ω₂", "voltage_cost_cny_per_pu": "¥ per p.u. per bus-hour",
                  "loss_cost_cny_per_mwh": "¥/MWh"},
    "reference_profiles": {"load": "24 × share of nominal load", "pv": "24 × share of PV capacity",
                           "wind": "24 × share of wind capacity"},
}
#: top-level keys that are not sections
FIELDS = {"name": "the case's name", "description": "free text", "extends": "a shipped case whose sections this file replaces"}
OPTIONAL = ("batteries", "mop", "generators", "grid", "p2p", "dsa")


def _suggest(word: str, valid) -> str:
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {sorted(valid)}"


def check_layout(spec: dict) -> None:
    """CaseError naming the first unknown section or key of a case layout (and its closest valid
    name), or a section that is not a JSON object."""
    for key, value in spec.items():
        if key in FIELDS:
            continue
        if key not in SECTIONS:
            raise CaseError(f"{key}: unknown section{_suggest(key, [*SECTIONS, *FIELDS])}")
        if not isinstance(value, dict):
            raise CaseError(f"{key}: expected a JSON object of fields, got {type(value).__name__}")
        for field in value:
            if field not in SECTIONS[key]:
                raise CaseError(f"{key}.{field}: unknown key{_suggest(field, SECTIONS[key])}")
