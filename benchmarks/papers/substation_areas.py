"""Wang et al.'s (2024) Tables 1–3 in kind, beside the paper's stated figures, on its own system (`substation-areas`).

    python benchmarks/papers/substation_areas.py [--out results/seed001]

Per row: deterministic or stochastic prices (10 k-means scenarios of 1,000 samples), without or with
demand response, the normal or the 100 kW line: each DSA's individual and cooperative cost (before the
payments, ¥/day), its final cost after Nash bargaining, and the saving; then Table 3 (MWh bought, sold
and traded), voltages, battery throughput and Algorithm 1. Writes `<out>/claims.json`. About 20 s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import stackelberg_mop as sm
from stackelberg_mop.papers.substation_areas import reproduce

PAPER = {("deterministic", False, "normal"): "24.20 %", ("stochastic", False, "normal"): "5.44 %"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/seed001")
    args = parser.parse_args()
    case = sm.load_case("substation-areas")
    day = sm.reference_day(case)
    r = reproduce(case, day)
    f = lambda xs: " / ".join(f"{x:,.0f}" for x in xs)
    print(f"Wang et al. (2024) on `substation-areas`, day {day.name} (¥/day; DSA 1 / 2 / 3)")
    print(f"{'prices':13s} {'DR':3s} {'line':6s} | {'individual':22s} | {'cooperative':20s} | {'after bargaining':22s} | saving (paper)")
    for (prices, dr, line), row in r["tables"].items():
        paper = PAPER.get((prices, dr, line), "–")
        print(f"{prices:13s} {'yes' if dr else 'no':3s} {line:6s} | {f(row['individual']):22s} | "
              f"{f(row['cooperative']):20s} | {f(row['final']):22s} | {row['saving_pct']:.1f} % ({paper})")
    det, sto = (r["tables"][kind, False, "normal"] for kind in ("deterministic", "stochastic"))
    s_det = det["individual_total"] - det["cooperative_total"]
    s_sto = sto["individual_total"] - sto["cooperative_total"]
    print(f"cooperative profit under stochastic prices (no DR): paper 16.98 % lower; package "
          f"{100 * (s_sto - s_det) / s_det:+.2f} % ({s_det:,.0f} -> {s_sto:,.0f} ¥ saved)")
    t3 = r["table3"]
    print("\nTable 3 (deterministic, no DR; MWh per DSA, individual -> cooperative)")
    for key in ("buy", "sell", "traded"):
        a, b = t3[key]
        print(f"  {key:6s} " + "  ".join(f"{x:.2f} -> {y:.2f}" for x, y in zip(a, b)))
    print("\nvoltage at the DSAs' buses, p.u. (paper: DSA 1 0.986–1.001)")
    for mode, ranges in r["voltage"].items():
        print(f"  {mode:11s} " + "  ".join(f"{lo:.3f}–{hi:.3f}" for lo, hi in ranges))
    print("\nbattery throughput, MWh (individual, cooperative): "
          + "; ".join(f"{k}: {v['individual']:.2f}, {v['cooperative']:.2f}" for k, v in r["throughput"].items()))
    c = r["coalition"]
    print(f"coalition's net purchase: night (0–5, 20–23 h) {c['night_buy']:+.2f} MWh, 10–15 h {c['midday_net']:+.2f} MWh")
    a = r["admm"]
    print(f"Algorithm 1 (DR, normal line): {a['status']} after {a['iterations']} iterations, cost {100 * a['gap_of_savings']:+.2f} % "
          f"of the savings from the centralised optimum, trades within {a['trade_difference']:.3f} MW")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    r["tables"] = {" | ".join(str(k) for k in key): row for key, row in r["tables"].items()}
    (out / "claims.json").write_text(json.dumps(r, indent=1))
    print(f"\nwrote {out / 'claims.json'}")


if __name__ == "__main__":
    main()
