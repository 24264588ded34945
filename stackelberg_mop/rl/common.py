"""What the training scripts share: environments, normalisation, validation against the optimum,
resumable checkpoints.

A run writes to ``<out>/<name>/``:

- ``config.json``: the settings;
- ``evaluations.csv``: one row per validation (environment steps, wall time, the validation days'
  aggregate normalised regret against the shipped optimum, `yardstick`, with its bootstrap interval,
  the mean per-day ratio, mean reward, mean DNO objective, failed days), also printed as one line;
- ``best_model.zip`` (+ ``_vecnormalize.pkl``, ``best.json``): the model with the lowest validation
  aggregate regret so far (the model selection of the benchmark protocol: validation days only);
- ``model.zip`` (+ ``_vecnormalize.pkl``): the final model; ``scores.json`` once the run is finished;
- ``checkpoint/`` while it runs (`checkpoint`): the same command resumes a killed run from there, and
  a finished run is skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from .. import _validate
from ..envs.observation import OBS_BOUND
from ..scoring.yardstick import aggregate_regret, bootstrap_interval
from . import checkpoint
from .config import differences, layers

ENV_PREFIX = "stackelberg_mop:"  # worker processes import the package (registering the IDs) by this
EVAL_FIELDS = ["timesteps", "wall_s", "val_aggregate_regret", "val_ci_low", "val_ci_high", "val_normalised_regret",
               "mean_reward", "mean_dno_objective", "failures"]


def env_kwargs(config) -> dict:
    """The environment's keyword arguments from a training config."""
    baseline = None if config.reward_baseline == "none" else config.reward_baseline
    return {"mop": config.mop, "reward_baseline": baseline, "reward_scale": config.reward_scale}


def make_vec_env(env_id: str, n_envs: int, seed: int, kwargs: dict, subprocess: bool = False):
    """n_envs copies of `env_id` in an SB3 VecEnv (DummyVecEnv, or SubprocVecEnv with subprocess=True)."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return sb3_make_vec_env(ENV_PREFIX + env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs,
                            vec_env_cls=SubprocVecEnv if subprocess else DummyVecEnv)


def normalise(venv, training: bool = True):
    """Running mean/std normalisation of observations (rewards are already scaled by the env)."""
    return VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=OBS_BOUND, training=training)


def validation_env(env_id: str, kwargs: dict, days: list):
    """The environment `validate` plays: `env_id` with `kwargs`, drawing from `days` only."""
    return gym.make(env_id, **(kwargs | {"days": days, "split": "val"}))


def validate(predict, env, normalize=None) -> dict:
    """The deterministic policy `predict(obs) -> action` on each day of `env`'s list (one episode
    each, a whole day hour by hour in the hourly game): aggregate normalised regret against the
    shipped optimum (`yardstick.aggregate_regret` of the final infos' J, J*, J_tariff) with its
    bootstrap 95 % interval, the mean of the per-day ratios, mean reward, mean DNO objective and
    failed days."""
    rewards, j, best, base, ratios, failures = [], [], [], [], [], 0
    for index in range(len(env.unwrapped.pool.of("val"))):
        obs, _ = env.reset(options={"day": index})
        total, done, info = 0.0, False, {}
        while not done:
            action = predict(normalize(obs) if normalize is not None else obs)
            obs, r, terminated, truncated, info = env.step(action)
            total, done = total + r, terminated or truncated
        rewards.append(total)
        solved = str(info.get("status", "")).startswith("optimal")
        failures += not solved
        j.append(info["dno_objective"] if solved else np.nan)
        best.append(info.get("optimum_objective", np.nan))  # absent where the game is not J*'s
        base.append(info.get("tariff_objective", np.nan))
        ratios.append(info.get("normalised_regret", np.nan) if solved else np.nan)
    low, high = bootstrap_interval(j, best, base)
    return {"val_aggregate_regret": aggregate_regret(j, best, base), "val_ci_low": low, "val_ci_high": high,
            "val_normalised_regret": float(np.nanmean(ratios)) if np.isfinite(ratios).any() else float("nan"),
            "mean_reward": float(np.mean(rewards)),
            "mean_dno_objective": float(np.nanmean(j)) if np.isfinite(j).any() else float("nan"),
            "failures": failures}


def selection_key(score: dict) -> float:
    return score["val_aggregate_regret"] if np.isfinite(score["val_aggregate_regret"]) else -score["mean_reward"]


class Trainer(BaseCallback):
    """Validates every `eval_every` steps (appending to evaluations.csv, printing one line, keeping the
    best model) and checkpoints every `checkpoint_every` steps (`checkpoint`). Its own state (last
    validation, best score, wall time before this process) travels in the checkpoint."""

    def __init__(self, config, run: Path, days: list, inner_venv, state: dict | None = None):
        super().__init__()
        self.c, self.run, self.inner = config, run, inner_venv
        self.eval_env = validation_env(config.env_id, env_kwargs(config), days)
        state = state or {}
        self.last_eval = state.get("last_eval", -1)
        self.last_checkpoint = state.get("last_checkpoint", 0)
        self.best = state.get("best", np.inf)
        self.wall_before = state.get("wall_s", 0.0)
        self.started = time.perf_counter()

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def _on_training_start(self) -> None:
        if self.last_eval < 0:  # a fresh run: the untrained policy is the curve's first point
            self.evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps - max(self.last_eval, 0) >= self.c.eval_every:
            self.evaluate()
        return True

    def _on_rollout_start(self) -> None:
        due = self.num_timesteps - self.last_checkpoint >= self.c.checkpoint_every
        if due and checkpoint.at_day_start(self.inner):
            self.last_checkpoint = self.num_timesteps
            checkpoint.save(self.run, self.model, self.inner, {"trainer": self.state(), "config": dataclasses.asdict(self.c)})

    def state(self) -> dict:
        return {"last_eval": self.last_eval, "last_checkpoint": self.last_checkpoint, "best": self.best,
                "wall_s": self.wall()}

    def evaluate(self) -> dict:
        self.last_eval = self.num_timesteps
        norm = self.model.get_vec_normalize_env()
        score = validate(lambda obs: self.model.predict(obs, deterministic=True)[0], self.eval_env,
                         norm.normalize_obs if norm is not None else None)
        row = {"timesteps": self.num_timesteps, "wall_s": round(self.wall(), 1), **score}
        with (self.run / "evaluations.csv").open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=EVAL_FIELDS).writerow(row)
        key = selection_key(score)
        if key < self.best:
            self.best = key
            self.model.save(self.run / "best_model")
            if norm is not None:
                norm.save(str(self.run / "best_model_vecnormalize.pkl"))
            (self.run / "best.json").write_text(json.dumps(row, indent=1))
        say(f"{self.c.name}: {self.num_timesteps:,}/{self.c.total_timesteps:,} steps, {row['wall_s']:.0f} s: "
            f"validation aggregate regret {score['val_aggregate_regret']:.3f} "
            f"[{score['val_ci_low']:.3f}, {score['val_ci_high']:.3f}], mean reward {score['mean_reward']:.3f}, "
            f"{score['failures']} failed (best {'regret' if np.isfinite(score['val_aggregate_regret']) else '−reward'} "
            f"{self.best:.3f})")
        return score


def say(line: str) -> None:
    """One line of progress, flushed (readable in a log file, above a progress bar on a terminal)."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _fresh_model(config, algo_cls, algo_kwargs: dict, venv):
    kwargs = dict(algo_kwargs)
    arch = layers(config.net_arch)
    if arch:
        kwargs["policy_kwargs"] = kwargs.get("policy_kwargs", {}) | {"net_arch": arch}
    return algo_cls("MlpPolicy", venv, seed=config.seed, device="cpu", verbose=0, **kwargs)


def train(config, algo_cls, algo_kwargs: dict, env_kwargs_of=None) -> Path:
    """Train `algo_cls` (an SB3 algorithm) as `config` says; returns the run's folder.

    The same call resumes a killed run from its last checkpoint (its saved config must agree with
    `config` in everything that changes the computation) and returns at once for a finished one.
    env_kwargs_of: optional callable(venv) -> extra algorithm kwargs that need the environment
    (TD3's exploration noise needs the action size). A config with a non-empty ``init_from`` (a run
    folder, whose best_model is taken, or a model .zip) starts from that model with its observation
    statistics held fixed; the replay buffer starts empty.
    """
    from ..cases import load_case
    from ..runner.benchmark import select_days
    from .config import check_config

    check_config(config)
    init = getattr(config, "init_from", "")
    if init:
        check_init_model(algo_cls, init)
    run = run_folder(config)
    if (run / "scores.json").is_file():
        say(f"{config.name}: finished already ({run / 'scores.json'})")
        return run
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    days = select_days(load_case(), "val", config.eval_days)
    folder = checkpoint.latest(run)
    inner = make_vec_env(config.env_id, config.n_envs, config.seed, env_kwargs(config), config.subprocess)
    if folder is not None:
        model, state = _resume(config, algo_cls, run, folder, inner)
    else:
        model, state = _start(config, algo_cls, algo_kwargs, env_kwargs_of, run, inner), None
    trainer = Trainer(config, run, days, inner, state)
    trainer.init_callback(model)
    remaining = config.total_timesteps - (model.num_timesteps if folder is not None else 0)
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=trainer, progress_bar=config.progress_bar,
                    reset_num_timesteps=folder is None)
    if trainer.last_eval != model.num_timesteps:
        trainer.evaluate()
    _finish(config, run, model, trainer)
    model.get_env().close()
    trainer.eval_env.close()
    return run


def run_folder(config) -> Path:
    """The run's folder ``out/name``, checked before anything is written: --out must be a folder (or
    not exist yet) and a folder that holds a run must hold one with these settings (it is resumed);
    ValueError naming the flag otherwise."""
    run = _validate.writable_path("--out", Path(config.out) / config.name, "a folder")
    if run.exists() and not run.is_dir():
        raise ValueError(f"--out/--name: {run} is a file, not a run folder")
    saved = run / "config.json"
    if saved.is_file():
        try:
            earlier = json.loads(saved.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{saved}: not the JSON of a run's settings ({err}); delete the folder or choose "
                             "another --name") from None
        changed = differences(config, earlier if isinstance(earlier, dict) else {})
        if changed:
            raise ValueError(f"{run}: holds a run with other settings ({', '.join(changed)} differ); "
                             "choose another --name or --out, or delete the folder")
    elif run.is_dir() and any(run.iterdir()):
        raise ValueError(f"{run}: holds files but no run's config.json; choose another --name or --out")
    return run


def day_ahead_actor(config, features: np.ndarray, arch: dict, init: Path | None = None):
    """(TD3 model, its VecNormalize) of a day-ahead actor trained outside SB3's learning loop (behaviour
    cloning, exact gradients): fresh, observations normalised by the statistics of `features` (the
    training days' observations, D × obs), or continued from the model file `init` with the
    statistics it was trained with. The statistics are held fixed (``training=False``)."""
    from stable_baselines3 import TD3

    inner = make_vec_env(config.env_id, 1, config.seed, {"mop": config.mop})
    if init is not None:
        venv = VecNormalize.load(str(init.with_name(init.stem + "_vecnormalize.pkl")), inner)
        model = TD3.load(init, env=venv, device="cpu")
    else:
        venv = normalise(inner)
        venv.obs_rms.mean, venv.obs_rms.var, venv.obs_rms.count = (features.mean(axis=0), features.var(axis=0),
                                                                    float(len(features)))
        model = TD3("MlpPolicy", venv, seed=config.seed, device="cpu", verbose=0, policy_kwargs={"net_arch": arch})
    venv.training, venv.norm_reward = False, False
    return model, venv


def check_init_model(algo_cls, init: str) -> Path:
    """The model file a run continues from (``--init-from``: a run folder, whose best_model is taken,
    or a model .zip), loaded once to check that it is a model of `algo_cls`; ValueError otherwise."""
    start = Path(init) / "best_model.zip" if Path(init).is_dir() else Path(init)
    if not start.is_file():
        raise ValueError(f"--init-from: no model at {start}")
    try:
        algo_cls.load(start, device="cpu")
    except Exception as err:  # noqa: BLE001 - zipfile/pickle/torch/SB3 raise many kinds; all mean "not this model"
        raise ValueError(f"--init-from: {start} is not a {algo_cls.__name__} model "
                         f"({type(err).__name__}: {err})"[:300]) from None
    return start


def _start(config, algo_cls, algo_kwargs, env_kwargs_of, run: Path, inner):
    """A fresh model (or one continued from ``init_from``), evaluations.csv started anew."""
    with (run / "evaluations.csv").open("w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=EVAL_FIELDS).writeheader()
    for name in ("best_model.zip", "best_model_vecnormalize.pkl", "best.json"):
        (run / name).unlink(missing_ok=True)
    init, start = getattr(config, "init_from", ""), None
    if init:
        start = check_init_model(algo_cls, init)
    venv = inner
    if config.normalize_obs:
        stats = start.with_name(start.stem + "_vecnormalize.pkl") if start is not None else None
        if stats is not None and stats.exists():
            # a continued actor keeps the input scaling it was trained with: updating the statistics
            # would move its decisions before any gradient step
            venv = VecNormalize.load(str(stats), inner)
            venv.training, venv.norm_reward = False, False
        else:
            venv = normalise(inner)
    kwargs = algo_kwargs | (env_kwargs_of(venv) if env_kwargs_of is not None else {})
    if start is not None:
        return algo_cls.load(start, env=venv, device="cpu", **kwargs)
    return _fresh_model(config, algo_cls, kwargs, venv)


def cut_evaluations(run: Path, done: int) -> None:
    """evaluations.csv cut back to its rows up to `done` steps, the checkpoint a run resumes from (the
    later ones are run again); ValueError naming the file when it is not a run's validation log."""
    try:
        rows = [r for r in csv.DictReader((run / "evaluations.csv").open()) if int(r["timesteps"]) <= done]
    except (OSError, KeyError, TypeError, ValueError, csv.Error) as err:
        raise ValueError(f"{run / 'evaluations.csv'}: not the run's validation log ({err}); delete the run folder "
                         "to start again") from None
    with (run / "evaluations.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=EVAL_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _resume(config, algo_cls, run: Path, folder: Path, inner):
    """The model, its environments and generators as they were at the checkpoint in `folder`;
    evaluations.csv cut back to the rows before it (they are run again)."""
    try:  # everything read before anything is written
        state = checkpoint.read_state(folder)
        obs = checkpoint.restore_envs(inner, state)
        venv = inner
        if (folder / "vecnormalize.pkl").is_file():
            venv = VecNormalize.load(str(folder / "vecnormalize.pkl"), inner)
            venv.old_obs = state["original_obs"] if state["original_obs"] is not None else obs
        model = algo_cls.load(folder / "model.zip", env=venv, device="cpu", force_reset=False)
        if (folder / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(folder / "replay_buffer.pkl")
        checkpoint.restore_generators(model, state)
        trainer_state = state["trainer"]
    except Exception as err:  # noqa: BLE001 - unpickling and SB3's loaders raise anything: all mean "unreadable"
        raise ValueError(f"{folder}: the checkpoint cannot be read ({type(err).__name__}: {err}"[:300]
                         + "); delete it to start the run again") from None
    done = model.num_timesteps
    cut_evaluations(run, done)
    checkpoint.restore_best(run, folder)
    say(f"{config.name}: resuming at {done:,} of {config.total_timesteps:,} steps from {folder}")
    return model, trainer_state


def keep_slim(run: Path, algo: str) -> None:
    """Write the best model's deciding part alone (`agent.save_policy`, ~1 MB) beside it, once: what
    the repository keeps of a run (the .zip files and checkpoints are not committed)."""
    from stable_baselines3 import PPO, SAC, TD3

    from ..policies.agent import SLIM, save_policy

    if (run / "best_model.zip").is_file() and not (run / SLIM).is_file():
        model = {"ppo": PPO, "sac": SAC, "td3": TD3}[algo].load(run / "best_model.zip", device="cpu")
        save_policy(model, algo, run / SLIM)


def _finish(config, run: Path, model, trainer: Trainer) -> None:
    """Final model, scores.json (the best model's validation row, steps, wall time); checkpoints go."""
    model.save(run / "model")
    norm = model.get_vec_normalize_env()
    if norm is not None:
        norm.save(str(run / "model_vecnormalize.pkl"))
    best = json.loads((run / "best.json").read_text()) if (run / "best.json").is_file() else {}
    scores = {"algo": config.algo, "env_id": config.env_id, "seed": config.seed, "env_steps": model.num_timesteps,
              "wall_s": round(trainer.wall(), 1), "best_timesteps": best.get("timesteps"),
              "val_aggregate_regret": best.get("val_aggregate_regret"), "val_ci_low": best.get("val_ci_low"),
              "val_ci_high": best.get("val_ci_high"), "val_normalised_regret": best.get("val_normalised_regret")}
    keep_slim(run, config.algo)
    (run / "scores.json").write_text(json.dumps(scores, indent=1))
    checkpoint.remove(run)
    say(f"{config.name}: finished, {model.num_timesteps:,} steps in {trainer.wall():.0f} s; best validation "
        f"aggregate regret {scores['val_aggregate_regret']} at {scores['best_timesteps']} steps; saved to {run}")
