"""Behaviour cloning of the bi-level optimum: a day-ahead actor trained to post the exact answer.

    python -m stackelberg_mop.rl.bc --labels benchmarks/agents/labels/ieee33-mop-train.jsonl --out results/train

The labels are optimum tables (`stackelberg-mop optima --split train --out FILE`: each training day's
KKT prices, with the gap the solver reached) and the input is what the day-ahead environment observes
(`envs.day_features`, normalised by its training-day mean and std). The actor is a TD3 actor (SB3's
`MlpPolicy`), fitted to the optimum's action (`market.prices_to_action`) by the regret surrogate
below (``--loss regret``, the default) or in mean squared error (``--loss mse``); the epoch kept is the one with the lowest aggregate normalised regret Σ(J − J*)/Σ(J_tariff − J*) on the
validation days (scored by `evaluate` against the shipped optimum; the test days are never read).

The bi-level optimum sits on breakpoints of the followers' response: a price a few ¥/MWh on one side
of the optimum's costs next to nothing, on the other side the response flips and the DNO loses tens
to hundreds of ¥ (e.g. 75 ¥ for 0.3 ¥/MWh above the floor in one hour). A regression in mean squared
error is blind to that side, so ``--loss regret`` uses a surrogate of the regret instead: for each
training day and hour, `sensitivities` measures J(λ* ± probe in that hour) − J* (by `evaluate`,
cached beside the labels), and an error e_t of the actor's action costs
c⁺_t·max(e_t, 0) + c⁻_t·max(−e_t, 0) with c± those increases per unit of action: the actor learns
to err on the cheap side (a quantile of the labels rather than their mean). An MSE term, weighted
by ``--mse-weight`` (default 0: it did not help on the validation days), can be added for hours where
neither side costs anything. The sensitivities take ~8 min once (one core); training ~1 min.

The run folder has the layout of `rl.common.train` (config.json, best_model.zip with its
``_vecnormalize.pkl``, evaluations.csv as it goes), so it loads with the ``agent:RUN_DIR`` policy and
can be fine-tuned by RL (``python -m stackelberg_mop.rl.td3 --init-from RUN_DIR --critic-warmup N``;
on this game that made the validation regret worse).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validate
from .config import arg, script_main


@dataclass
class Config:
    """Behaviour cloning of the bi-level optimum into a TD3 actor (day-ahead game, MOP by the OPF)."""

    name: str = arg("bc", 'run folder name under --out')
    algo: str = arg("td3", "the SB3 algorithm whose actor is cloned (TD3's)")
    env_id: str = arg("StackelbergMOP-v1", 'the Gymnasium ID the agent plays')
    mop: str = arg("opf", "the game the optimum solves: the DNO's OPF dispatches the MOP")
    reward_baseline: str = arg("tariff", 'for RL fine-tuning from this run (td3 --init-from)')
    labels: str = arg("benchmarks/agents/labels/ieee33-mop-train.jsonl", 'optimum table of the training days')
    seed: int = arg(0, 'random seed')
    epochs: int = arg(1000, 'passes over the training days')
    batch_size: int = arg(64, 'minibatch size (days)')
    learning_rate: float = arg(1e-3, "AdamW's step size")
    weight_decay: float = arg(0.1, "AdamW's decoupled weight decay")
    actor_layers: str = arg("256,256", 'hidden sizes of the actor (the policy that ships)')
    critic_layers: str = arg("64,64", "of TD3's critics, untrained here (kept small: the run ships)")
    loss: str = arg("regret", 'regret (the one-sided sensitivity surrogate, see module doc) or mse')
    probe: float = arg(5.0, '¥/MWh: the price step of the sensitivities (loss regret)')
    mse_weight: float = arg(0.0, 'weight of the MSE term beside the regret surrogate')
    eval_every: int = arg(50, 'epochs between validation scores')
    eval_days: int = arg(42, 'validation days scored (evenly spaced; all 42 by default)')
    progress_bar: bool = arg(True, 'show a progress bar')
    out: str = arg("results/train", 'folder of the run folders')


def _targets(case, days, table) -> tuple[list, np.ndarray]:
    """The labelled days and their optimum actions (D, 24); days without a usable row (none, made for
    other data, or one whose certificate failed its verification) are skipped."""
    from ..data import OptimumError
    from ..market import prices_to_action

    kept, actions = [], []
    for day in days:
        try:
            opt = table.get(day)
        except OptimumError:
            continue
        if not table.rows[day.name].get("verified", True):
            continue
        kept.append(day)
        actions.append(prices_to_action(case, day, opt.prices))
    return kept, np.array(actions, dtype=np.float32)


def sensitivities(case, days, prices: np.ndarray, probe: float, progress: bool = True) -> np.ndarray:
    """(D, 24, 2) ¥: J(λ with hour t moved by +probe) − J(λ) and J(λ with hour t moved by −probe) −
    J(λ) for each day's prices (D, 24) ¥/MWh, the moved vector projected onto the price rules and
    scored by `evaluate` (MOP dispatched). An hour at a bound moved outside it stays there: 0. A failed
    solve counts as a large increase (10⁴ ¥)."""
    from tqdm import tqdm

    from ..market import price_bounds
    from ..scoring import evaluate

    out = np.zeros((len(days), 24, 2))
    for d, (day, lam) in enumerate(tqdm(list(zip(days, prices)), disable=not progress, desc="sensitivities",
                                        unit="day")):
        bounds = price_bounds(case, day)
        base = evaluate(case, day, lam).dno_objective
        for t in range(24):
            for side, step in enumerate((probe, -probe)):
                moved = lam.copy()
                moved[t] += step
                moved = bounds.project(moved)
                if np.allclose(moved, lam):
                    continue
                outcome = evaluate(case, day, moved)
                out[d, t, side] = (outcome.dno_objective - base) if outcome.status.startswith("optimal") else 1e4
    return out


def surrogate_loss(error, slope, mse_weight: float = 1.0):
    """The regret surrogate of a batch: error (B, 24) = actor action − optimum action, slope (B, 24, 2)
    = cost per unit of action of erring upwards / downwards (≥ 0); mean over the batch of
    Σ_t slope⁺_t·max(e_t, 0) + slope⁻_t·max(−e_t, 0), plus mse_weight · mean e². Its minimiser over a
    constant prediction is the slope⁻/(slope⁺ + slope⁻) quantile of the labels (without the MSE)."""
    hinge = slope[..., 0] * error.clamp(min=0) + slope[..., 1] * (-error).clamp(min=0)
    return hinge.sum(dim=-1).mean() + mse_weight * error.pow(2).mean()


def _cached_sensitivities(case, days, prices, labels: str, probe: float, progress: bool) -> np.ndarray:
    """`sensitivities` of the labels, cached in ``<labels>.sensitivity-<probe>.npz`` (keyed by the days,
    the label prices and the probe: a changed label file recomputes it)."""
    import hashlib

    key = hashlib.sha256(np.asarray(prices, dtype=np.float64).tobytes() + repr((probe, [d.name for d in days]))
                         .encode()).hexdigest()[:16]
    path = Path(labels).with_name(Path(labels).stem + f".sensitivity-{probe:g}.npz")
    if path.exists():
        cached = np.load(path)
        if str(cached["key"]) == key:
            return cached["cost"]
    cost = sensitivities(case, days, prices, probe, progress)
    np.savez_compressed(path, key=key, cost=cost)
    return cost


def main(argv=None) -> Path:
    import torch
    from tqdm import tqdm

    from ..cases import load_case
    from ..data import days
    from ..data.optimum_table import OptimumTable
    from ..envs.observation import OBS_BOUND, day_features
    from ..runner.benchmark import select_days
    from .common import day_ahead_actor, run_folder, validate, validation_env
    from .config import layers, parse_config

    c = parse_config(Config, argv)
    _validate.choice("--env-id", c.env_id, ("StackelbergMOP-v1",))  # the labels are this game's optimum
    _validate.choice("--mop", c.mop, ("opf",))
    run = run_folder(c)
    if not Path(c.labels).is_file():
        raise ValueError(f"--labels: no table at {c.labels!r}; make it with `stackelberg-mop optima --split train "
                         f"--out {c.labels}`")
    arch = {"pi": layers(c.actor_layers, "--actor-layers"), "qf": layers(c.critic_layers, "--critic-layers")}
    torch.manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    case = load_case()
    table = OptimumTable(case, c.labels)
    train_days, y = _targets(case, days(case, "train"), table)
    if not train_days:
        raise ValueError(f"--labels: {c.labels} holds no row for this case's training days")
    if c.loss == "regret":
        from ..market import price_bounds

        lam = np.array([table.get(d).prices for d in train_days])
        cost = _cached_sensitivities(case, train_days, lam, c.labels, c.probe, c.progress_bar)
        bounds = [price_bounds(case, d) for d in train_days]
        spans = np.array([b.upper - b.lower for b in bounds])
        # thousands of ¥ per unit of action (a unit action step moves the hour's price by span/2)
        slope = np.clip(cost, 0, None) / (c.probe * 2.0 / np.maximum(spans, 1e-9))[:, :, None] / 1e3
        slope = torch.as_tensor(slope, dtype=torch.float32)
    x = np.array([np.clip(day_features(case, d), -OBS_BOUND, OBS_BOUND) for d in train_days])
    val_days = select_days(case, "val", c.eval_days)
    val_env = validation_env(c.env_id, {"mop": c.mop}, val_days)

    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))
    model, venv = day_ahead_actor(c, x, arch)
    actor = model.actor
    inputs = torch.as_tensor(venv.normalize_obs(x), dtype=torch.float32)
    targets = torch.as_tensor(y, dtype=torch.float32)
    optimiser = torch.optim.AdamW(actor.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)

    log = run / "evaluations.csv"
    with log.open("w", newline="") as fh:
        csv.writer(fh).writerow(["timesteps", "epoch", "train_loss", "val_aggregate_regret", "val_normalised_regret",
                                 "mean_reward", "mean_dno_objective", "failures", "elapsed_s"])
    best, start = np.inf, time.perf_counter()
    bar = tqdm(range(1, c.epochs + 1), disable=not c.progress_bar, desc="bc", unit="epoch")
    for epoch in bar:
        actor.train()
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(order), c.batch_size):
            idx = torch.as_tensor(order[i:i + c.batch_size])
            error = actor(inputs[idx]) - targets[idx]
            loss = (surrogate_loss(error, slope[idx], c.mse_weight) if c.loss == "regret"
                    else error.pow(2).mean())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        if epoch % c.eval_every and epoch != c.epochs:
            continue
        actor.eval()
        model.actor_target.load_state_dict(actor.state_dict())
        model.save(run / "model")
        venv.save(str(run / "model_vecnormalize.pkl"))
        scores = validate(lambda obs: model.predict(obs, deterministic=True)[0], val_env, venv.normalize_obs)
        regret = scores["val_aggregate_regret"]
        with log.open("a", newline="") as fh:
            csv.writer(fh).writerow([epoch * len(x), epoch, np.mean(losses), regret, scores["val_normalised_regret"],
                                     -regret, scores["mean_dno_objective"], scores["failures"],
                                     round(time.perf_counter() - start, 1)])
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_regret=f"{regret:.3f}")
        if regret < best:
            best = regret
            model.save(run / "best_model")
            venv.save(str(run / "best_model_vecnormalize.pkl"))
    bar.close()
    venv.close()
    val_env.close()
    print(f"saved to {run}: best validation aggregate regret {best:.3f} ({len(train_days)} training days, "
          f"{len(val_days)} validation days)")
    return run


if __name__ == "__main__":
    script_main(main)

