"""Analytic policy gradient: a day-ahead pricing actor trained by gradient descent on the exact objective.

    python -m stackelberg_mop.rl.apg --init-from benchmarks/agents/bc-regret --out results/train --name apg

The actor maps a day's observation (`envs.day_features`, normalised) to an action; the action's prices
(`market.action_to_prices`) are scored by `evaluate(..., gradient=True)`, and the loss, the mean over a
batch of days of (J − J_tariff) / 1,000 ¥ (what the prices cost beyond passing the tariff through), is
differentiated exactly: dJ/da = dJ/dλ · dλ/da (`scoring.gradient`, `market.action_jacobian`), then back
through the actor by PyTorch. No optimum labels are needed, so training can use more days than the
labelled ones: ``--load-sets aggregate,household`` adds each training day again with SimBench's
household load profiles in place of the LV-grid aggregates (`data.simbench_day`'s ``load_set``), the
same calendar days, so the validation and test weeks stay unseen; ``--mixed-days N`` adds N synthetic
days, each one training day's loads with another training day's PV (`data.mixed_day`).

The actor is a TD3 actor (SB3's ``MlpPolicy``), fresh or continued from a run folder (``--init-from``,
e.g. the behaviour clone, whose observation statistics are then kept). Every ``--eval-every`` scored
days it is scored on the validation days (aggregate normalised regret against the shipped optimum,
`rl.common.validate`), and the best is kept. The run folder has the layout of `rl.common.train`
(config.json, best_model.zip with its statistics, best_policy.pt, evaluations.csv, scores.json), so it
loads as ``agent:RUN_DIR``, and the leaderboard trains it like the SB3 scripts. The same command
resumes a killed run from its last checkpoint (actor, optimiser, generator, progress).
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
    """Analytic policy gradient on StackelbergMOP-v1 (day-ahead, MOP by the OPF): exact dJ/da by backprop."""

    name: str = arg("apg", "run folder name under --out")
    algo: str = arg("td3", "the SB3 algorithm whose actor is trained (TD3's; how the run loads as an agent)")
    env_id: str = arg("StackelbergMOP-v1", "the Gymnasium ID the agent plays (the day-ahead game)")
    mop: str = arg("opf", "the DNO's OPF dispatches the MOP")
    reward_baseline: str = arg("tariff", "the loss's zero: J − J_tariff, the ¥ the prices cost beyond the tariff")
    seed: int = arg(0, "random seed (the batches' order, a fresh actor's weights)")
    total_timesteps: int = arg(60_000, "days scored with their gradient in training (the budget)")
    batch_size: int = arg(32, "days per gradient step")
    learning_rate: float = arg(1e-4, "Adam's step size")
    init_from: str = arg("", "a run folder (its best_model) to continue, e.g. the behaviour clone")
    load_sets: str = arg("aggregate", "SimBench load profiles of the training days: aggregate, household or both")
    mixed_days: int = arg(0, "synthetic training days added: one training day's loads with another's PV (data.mixed_day)")
    actor_layers: str = arg("256,256", "hidden sizes of a fresh actor")
    eval_every: int = arg(2_750, "scored training days between validation runs (and checkpoints)")
    eval_days: int = arg(42, "validation days scored (evenly spaced; all 42 by default)")
    progress_bar: bool = arg(True, "print a line per evaluation (and a bar on a terminal)")
    out: str = arg("results/train", "folder of the run folders")


def check(c: Config) -> None:
    """ValueError naming the first flag that cannot work, before anything is written."""
    from ..data.days import LOAD_SETS, day_indices

    _validate.choice("--algo", c.algo, ("td3",))
    _validate.choice("--env-id", c.env_id, ("StackelbergMOP-v1",))
    _validate.choice("--mop", c.mop, ("opf",))
    _validate.choice("--reward-baseline", c.reward_baseline, ("tariff",))
    train = len(day_indices("train"))
    _validate.integer("--mixed-days", c.mixed_days, lo=0, hi=train * (train - 1))
    for name in ("seed", "total_timesteps", "batch_size", "eval_every", "eval_days"):
        _validate.integer(f"--{name.replace('_', '-')}", getattr(c, name), lo=0 if name == "seed" else 1)
    _validate.number("--learning-rate", c.learning_rate, lo=0, lo_open=True)
    for part in c.load_sets.split(","):
        _validate.choice("--load-sets", part, LOAD_SETS)


def training_days(case, load_sets: str, mixed: int = 0, seed: int = 0) -> list:
    """The training split's days once per load set (`data.simbench_day`), in calendar order, then
    `mixed` synthetic days (`data.mixed_day`, aggregate loads): distinct (load day, weather day) pairs
    of two different training days, drawn with `seed` (the same days on every resume)."""
    from ..data import day_indices, mixed_day, simbench_day

    train = day_indices("train")
    real = [simbench_day(case, d, s) for s in load_sets.split(",") for d in train]
    pairs = np.random.default_rng([seed, 1]).permutation(len(train) * len(train))
    pairs = [(p // len(train), p % len(train)) for p in pairs if p // len(train) != p % len(train)][:mixed]
    return real + [mixed_day(case, int(train[a]), int(train[w])) for a, w in pairs]


def batch_gradient(case, days: list, tariff: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, float, int]:
    """(dLoss/da (B, 24), mean of J − J_tariff in k¥, failed days) for a batch of days with their
    tariff objectives J_tariff (¥): loss = mean over the days of (J − J_tariff)/1,000; a day that does
    not solve contributes no gradient."""
    from ..market import action_jacobian, action_to_prices
    from ..scoring import evaluate

    grads, gaps, failed = np.zeros_like(actions), [], 0
    for k, (day, base, a) in enumerate(zip(days, tariff, actions)):
        out = evaluate(case, day, action_to_prices(case, day, a)[0], gradient=True)
        if not out.status.startswith("optimal"):
            failed += 1
            continue
        grads[k] = out.price_gradient @ action_jacobian(case, day, a) / 1e3 / len(days)
        gaps.append((out.dno_objective - base) / 1e3)
    return grads, float(np.mean(gaps)) if gaps else float("nan"), failed


def main(argv=None) -> Path:
    import torch
    from stable_baselines3 import TD3
    from tqdm import tqdm

    from ..cases import load_case
    from ..envs.observation import OBS_BOUND, day_features
    from ..runner.benchmark import select_days
    from ..scoring.yardstick import TariffScore
    from .common import (
        EVAL_FIELDS,
        check_init_model,
        cut_evaluations,
        day_ahead_actor,
        keep_slim,
        run_folder,
        say,
        validate,
            validation_env,
    )
    from .config import layers, parse_config

    c = parse_config(Config, argv)
    check(c)
    init = check_init_model(TD3, c.init_from) if c.init_from else None
    arch = {"pi": layers(c.actor_layers, "--actor-layers"), "qf": [64, 64]}
    run = run_folder(c)
    if (run / "scores.json").is_file():
        say(f"{c.name}: finished already ({run / 'scores.json'})")
        return run
    case = load_case()
    days = training_days(case, c.load_sets, c.mixed_days, c.seed)
    score = TariffScore(case)
    tariff = np.array([score(d) for d in days])  # each day's J_tariff: the loss's zero
    x = np.array([np.clip(day_features(case, d), -OBS_BOUND, OBS_BOUND) for d in days])
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))
    model, venv = day_ahead_actor(c, x, arch, init)  # a continued actor keeps its input scaling
    actor = model.actor
    optimiser = torch.optim.Adam(actor.parameters(), lr=c.learning_rate)
    inputs = torch.as_tensor(venv.normalize_obs(x), dtype=torch.float32)
    val_env = validation_env(c.env_id, {"mop": c.mop}, select_days(case, "val", c.eval_days))
    rng = np.random.default_rng(c.seed)
    torch.manual_seed(c.seed)
    state = {"steps": 0, "wall": 0.0, "best": np.inf, "best_steps": None, "order": [], "cursor": 0}
    saved = run / "checkpoint.pt"
    if saved.is_file():  # resume: everything as it was at the last evaluation
        ck = torch.load(saved, map_location="cpu", weights_only=False)
        actor.load_state_dict(ck["actor"])
        optimiser.load_state_dict(ck["optimiser"])
        rng.bit_generator.state, state = ck["rng"], ck["state"]
        cut_evaluations(run, state["steps"])
        say(f"{c.name}: resuming at {state['steps']:,} of {c.total_timesteps:,} scored days")
    else:
        with (run / "evaluations.csv").open("w", newline="") as fh:
            csv.DictWriter(fh, fieldnames=EVAL_FIELDS).writeheader()

    def evaluate_and_keep() -> None:
        actor.eval()
        with torch.no_grad():
            scores = validate(lambda obs: actor(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy(),
                              val_env, venv.normalize_obs)
        actor.train()
        row = {"timesteps": state["steps"], "wall_s": round(state["wall"], 1), **{k: scores[k] for k in EVAL_FIELDS[2:]}}
        with (run / "evaluations.csv").open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=EVAL_FIELDS).writerow(row)
        if scores["val_aggregate_regret"] < state["best"]:
            state["best"], state["best_steps"] = scores["val_aggregate_regret"], state["steps"]
            model.actor_target.load_state_dict(actor.state_dict())
            model.save(run / "best_model")
            venv.save(str(run / "best_model_vecnormalize.pkl"))
            (run / "best.json").write_text(json.dumps(row))
        say(f"{c.name}: {state['steps']:,}/{c.total_timesteps:,} scored days, {state['wall']:.0f} s: validation "
            f"aggregate regret {scores['val_aggregate_regret']:.3f} [{scores['val_ci_low']:.3f}, "
            f"{scores['val_ci_high']:.3f}], {scores['failures']} failed (best {state['best']:.3f})")
        tmp = saved.with_suffix(".tmp")
        torch.save({"actor": actor.state_dict(), "optimiser": optimiser.state_dict(), "rng": rng.bit_generator.state,
                    "state": state}, tmp)
        tmp.replace(saved)

    if state["steps"] == 0:
        evaluate_and_keep()
    bar = tqdm(total=c.total_timesteps, initial=state["steps"], disable=not c.progress_bar, unit="day", desc=c.name)
    while state["steps"] < c.total_timesteps:
        began = time.perf_counter()
        if state["cursor"] >= len(state["order"]):
            state["order"], state["cursor"] = rng.permutation(len(days)).tolist(), 0
        idx = state["order"][state["cursor"]:state["cursor"] + c.batch_size]
        state["cursor"] += len(idx)
        actions = actor(inputs[idx])
        grads, _, _ = batch_gradient(case, [days[i] for i in idx], tariff[idx], actions.detach().numpy().astype(float))
        optimiser.zero_grad()
        actions.backward(torch.as_tensor(grads, dtype=torch.float32))
        optimiser.step()
        before = state["steps"]
        state["steps"] += len(idx)
        state["wall"] += time.perf_counter() - began
        bar.update(len(idx))
        if state["steps"] // c.eval_every > before // c.eval_every or state["steps"] >= c.total_timesteps:
            evaluate_and_keep()
    bar.close()
    model.save(run / "model")
    venv.save(str(run / "model_vecnormalize.pkl"))
    best = json.loads((run / "best.json").read_text())
    scores = {"algo": c.algo, "trainer": "apg", "env_id": c.env_id, "seed": c.seed, "env_steps": state["steps"],
              "wall_s": round(state["wall"], 1), "best_timesteps": state["best_steps"],
              **{k: best[k] for k in ("val_aggregate_regret", "val_ci_low", "val_ci_high", "val_normalised_regret")}}
    keep_slim(run, c.algo)
    (run / "scores.json").write_text(json.dumps(scores, indent=1))
    saved.unlink(missing_ok=True)
    venv.close()
    val_env.close()
    say(f"{c.name}: finished, {state['steps']:,} scored days in {state['wall']:.0f} s; best validation aggregate "
        f"regret {state['best']:.3f} at {state['best_steps']:,}; saved to {run}")
    return run


if __name__ == "__main__":
    script_main(main)
