"""What the training scripts share: environments, normalisation, evaluation on validation days,
checkpoints, and a trained agent as a pricing policy that the benchmark scores like any other.

A run writes to ``<out>/<name>/``: ``config.json``, ``evaluations.csv`` (one row per periodic
evaluation: timesteps, mean reward and mean DNO objective over the validation days),
``checkpoints/``, ``model.zip`` and ``best_model.zip`` (best validation reward), each with its
observation statistics (``<model>_vecnormalize.pkl``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from ..baselines.policies import Policy
from ..cases import HOURS, Case
from ..data import Day
from ..envs.observation import OBS_BOUND, day_features
from ..market import action_to_prices
from ..powerflow.mop import action_to_mop_setpoints

ENV_PREFIX = "stackelberg_mop:"  # worker processes import the package (registering the IDs) by this


def make_vec_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict, subprocess: bool = False):
    """n_envs copies of `env_id` in an SB3 VecEnv (DummyVecEnv, or SubprocVecEnv with subprocess=True)."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return sb3_make_vec_env(ENV_PREFIX + env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                            vec_env_cls=SubprocVecEnv if subprocess else DummyVecEnv)


def normalise(venv, training: bool = True):
    """Running mean/std normalisation of observations (rewards are already scaled by the env)."""
    return VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=OBS_BOUND, training=training)


class ValidationCallback(BaseCallback):
    """Every `every` timesteps: the deterministic policy on `n_days` fixed validation days; the mean
    reward and DNO objective are appended to ``evaluations.csv`` and the best model is saved as
    ``best_model.zip`` (with the observation statistics of that moment in ``best_model_vecnormalize.pkl``)."""

    def __init__(self, env_id: str, env_kwargs: dict, run_dir: Path, every: int, n_days: int):
        super().__init__()
        self.env_id, self.env_kwargs, self.run_dir = env_id, dict(env_kwargs), run_dir
        self.every, self.n_days, self.last, self.best = every, n_days, 0, -np.inf
        self.path = run_dir / "evaluations.csv"
        with self.path.open("w", newline="") as fh:
            csv.writer(fh).writerow(["timesteps", "mean_reward", "mean_dno_objective", "failures"])

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last < self.every:
            return True
        self.last = self.num_timesteps
        reward, objective, failures = evaluate_agent(self.model, self.training_env, self.env_id,
                                                     self.env_kwargs, "val", self.n_days)
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([self.num_timesteps, reward, objective, failures])
        if reward > self.best:
            self.best = reward
            self.model.save(self.run_dir / "best_model")
            if isinstance(self.training_env, VecNormalize):
                self.training_env.save(str(self.run_dir / "best_model_vecnormalize.pkl"))
        return True


def evaluate_agent(model, train_env, env_id: str, env_kwargs: dict, split: str, n_days: int):
    """Mean episode reward, mean DNO objective (¥/day, NaN if never reported) and failed episodes of
    the deterministic policy on the first `n_days` days of `split` (evenly spaced)."""
    env = gym.make(env_id, **(env_kwargs | {"split": split}))
    pool = env.unwrapped.pool.of(split)
    picks = np.linspace(0, len(pool) - 1, min(n_days, len(pool))).round().astype(int)
    rewards, objectives, failures = [], [], 0
    for index in picks:
        obs, _ = env.reset(options={"day": int(index)})
        total, done, info = 0.0, False, {}
        while not done:
            norm = train_env.normalize_obs(obs) if hasattr(train_env, "normalize_obs") else obs
            action, _ = model.predict(norm, deterministic=True)
            obs, r, terminated, truncated, info = env.step(action)
            total, done = total + r, terminated or truncated
        rewards.append(total)
        if info.get("status", "").startswith("optimal") and "dno_objective" in info:
            objectives.append(info["dno_objective"])
        else:
            failures += 1
    env.close()
    return float(np.mean(rewards)), float(np.mean(objectives)) if objectives else float("nan"), failures


def train(config, algo_cls, algo_kwargs: dict, env_kwargs_of=None) -> Path:
    """Train `algo_cls` (an SB3 algorithm) as `config` says; returns the run's folder.

    env_kwargs_of: optional callable(venv) -> extra algorithm kwargs that need the environment
    (TD3's exploration noise needs the action size). A config with a non-empty ``init_from`` (a run
    folder, whose best_model is taken, or a model .zip) continues that model with its observation
    statistics held fixed instead of starting afresh; the replay buffer starts empty.

    config needs: name, env_id, mop, reward_baseline, n_envs, seed, total_timesteps, eval_every,
    eval_days, checkpoint_every, normalize_obs, subprocess, progress_bar, out.
    """
    check_config(config)
    env_kwargs = {"mop": config.mop}
    if config.env_id == "StackelbergMOP-v0":
        baseline = config.reward_baseline
        env_kwargs["reward_baseline"] = None if str(baseline).lower() in ("none", "") else baseline
    run = run_directory(config.out, config.name, config)
    venv = make_vec_env(config.env_id, config.n_envs, config.seed, env_kwargs, config.subprocess)
    init, start = getattr(config, "init_from", ""), None
    if init:  # continue from a saved model (and its observation statistics), e.g. with less noise
        start = Path(init) / "best_model.zip" if Path(init).is_dir() else Path(init)
        if not start.exists():
            raise FileNotFoundError(f"init_from: no model at {start}")
    if config.normalize_obs:
        stats = start.with_name(start.stem + "_vecnormalize.pkl") if start is not None else None
        if stats is not None and stats.exists():
            # a continued actor keeps the input scaling it was trained with: updating the statistics
            # would move a frozen (or critic-warm-up) actor's decisions (benchmarks/README #48)
            venv = VecNormalize.load(str(stats), venv)
            venv.training, venv.norm_reward = False, False
        else:
            venv = normalise(venv)
    kwargs = algo_kwargs | (env_kwargs_of(venv) if env_kwargs_of is not None else {})
    if start is not None:
        model = algo_cls.load(start, env=venv, device="cpu", **kwargs)
    else:
        model = algo_cls("MlpPolicy", venv, seed=config.seed, device="cpu", verbose=0, **kwargs)
    callbacks = [ValidationCallback(config.env_id, env_kwargs, run, config.eval_every, config.eval_days),
                 CheckpointCallback(max(config.checkpoint_every // config.n_envs, 1), str(run / "checkpoints"),
                                    name_prefix=config.algo)]
    model.learn(total_timesteps=config.total_timesteps, callback=callbacks, progress_bar=config.progress_bar)
    model.save(run / "model")
    if isinstance(venv, VecNormalize):
        venv.save(str(run / "model_vecnormalize.pkl"))
    venv.close()
    return run


def run_directory(out: str, name: str, config) -> Path:
    path = Path(out) / name
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    return path


@dataclasses.dataclass
class RunConfig:
    """The settings every SB3 training script shares; each script's Config adds its algorithm's
    hyper-parameters and its defaults. The comment on a field's line is its flag's help text
    (`parse_config`), here and in the scripts."""

    name: str = "run"                   # run folder name under --out
    algo: str = "ppo"                   # the SB3 algorithm (fixed per script)
    env_id: str = "StackelbergMOP-v0"   # the Gymnasium ID trained on
    mop: str = "opf"                    # opf (the DNO dispatches the MOP), agent or off
    reward_baseline: str = "tariff"     # tariff (reward = improvement over the HV tariff) or none
    seed: int = 0                       # random seed (environments, network initialisation)
    total_timesteps: int = 20_000       # environment steps to train
    n_envs: int = 2                     # parallel environments
    subprocess: bool = False            # one process per environment (SubprocVecEnv) instead of DummyVecEnv
    normalize_obs: bool = True          # running mean/std normalisation of observations
    eval_every: int = 2_000             # timesteps between validation runs
    eval_days: int = 8                  # validation days per run (evenly spaced, fixed)
    checkpoint_every: int = 5_000       # timesteps between checkpoints
    progress_bar: bool = True           # show a progress bar
    out: str = "results/train"          # folder of the run folders
    learning_rate: float = 3e-4         # optimiser step size
    batch_size: int = 64                # minibatch size
    gamma: float = 0.99                 # discount factor


#: fields that may be 0 (all other integers must be >= 1)
ZERO_OK = ("seed", "learning_starts", "critic_warmup")
REWARD_BASELINE_FLAGS = ("tariff", "none")
#: float fields that must be > 0 (the others >= 0)
POSITIVE = ("learning_rate", "probe")
#: behaviour cloning's losses (`rl.bc`)
LOSSES = ("mse", "regret")


def _line_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field line in `cls` and its bases (their help text)."""
    import inspect
    import re

    out = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        out.update(re.findall(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, flags=re.MULTILINE))
    return out


def check_config(config) -> None:
    """ValueError naming the first field of a training config that cannot work: integers >= 1 (seed,
    learning_starts, critic_warmup >= 0), floats finite and >= 0 (learning_rate, probe > 0; gamma and
    gae_lambda <= 1), mop, reward_baseline and loss among their choices."""
    from .. import checks
    from ..envs.common import MOP_MODES

    for f in dataclasses.fields(config):
        value, flag = getattr(config, f.name), "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            checks.flag(flag, value)
        elif isinstance(f.default, int):
            checks.integer(flag, value, lo=0 if f.name in ZERO_OK else 1)
        elif isinstance(f.default, float):
            checks.number(flag, value, lo=0, lo_open=f.name in POSITIVE,
                          hi=1 if f.name in ("gamma", "gae_lambda") else None)
    checks.choice("--mop", config.mop, MOP_MODES)
    checks.choice("--reward-baseline", str(config.reward_baseline).lower(), REWARD_BASELINE_FLAGS)
    if hasattr(config, "loss"):
        checks.choice("--loss", config.loss, LOSSES)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(text)


def parse_config(cls, argv=None):
    """argparse over the fields of a config dataclass (``--total-timesteps 20000`` etc.), each flag
    with its help text and default; a value that cannot work exits with one line naming the flag."""
    import argparse

    from ..cli import _Parser

    comments = {**_line_comments(RunConfig), **_line_comments(cls)}  # shared names keep their help
    parser = _Parser(description=cls.__doc__.splitlines()[0],
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default, text = f.default, comments.get(f.name, " ")
        if isinstance(default, bool):
            parser.add_argument(flag, type=_bool, default=default, metavar="BOOL", help=text)
        elif default is None:
            parser.add_argument(flag, default=None, help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text)
    config = cls(**vars(parser.parse_args(argv)))
    try:
        check_config(config)
    except ValueError as err:
        parser.error(str(err))
    return config


# --- a trained agent as a pricing policy ------------------------------------------------------------
class AgentPolicy(Policy):
    """A saved day-ahead agent (``StackelbergMOP-v0``) as a policy: ``policy(case, day)`` → (prices
    (24,) ¥/MWh, mop) with mop "opf"/"off" or set-points (2, K, 24), ready for `evaluate`.

    run_dir: a training run's folder; which: "best_model" (best validation reward; falls back to the
    final "model" when no evaluation ran) or "model".
    """

    def __init__(self, run_dir: str | Path, which: str = "best_model"):
        from stable_baselines3 import PPO, SAC, TD3

        super().__init__()
        run = Path(run_dir)
        config = json.loads((run / "config.json").read_text())
        if config.get("env_id", "StackelbergMOP-v0") != "StackelbergMOP-v0":
            raise ValueError(f"run_dir: {run} holds an agent for {config['env_id']}; a day-ahead agent is needed")
        algo = {"ppo": PPO, "sac": SAC, "td3": TD3}[config["algo"]]
        if which not in ("best_model", "model"):
            raise ValueError(f"which: must be 'best_model' or 'model', got {which!r}")
        if not (run / f"{which}.zip").exists():
            which = "model"
        self.model = algo.load(run / f"{which}.zip", device="cpu")
        self.mop = config.get("mop", "opf")
        self.name = f"{config['algo']}-{config['mop']}"
        stats = run / f"{which}_vecnormalize.pkl"
        self._norm = None
        if stats.exists():
            import pickle

            with stats.open("rb") as fh:
                self._norm = pickle.load(fh)

    def decide(self, case: Case, day: Day):
        obs = day_features(case, day).clip(-OBS_BOUND, OBS_BOUND)
        if self._norm is not None:
            obs = np.clip((obs - self._norm.obs_rms.mean) / np.sqrt(self._norm.obs_rms.var + self._norm.epsilon),
                          -self._norm.clip_obs, self._norm.clip_obs).astype(np.float32)
        action, _ = self.model.predict(obs, deterministic=True)
        prices, _ = action_to_prices(case, day, action[:HOURS])
        mop = self.mop
        if mop == "agent":
            mop = action_to_mop_setpoints(case, np.asarray(action[HOURS:]).reshape(2, len(case.mop), HOURS))
        return prices, mop
