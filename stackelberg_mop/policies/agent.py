"""A saved agent as a pricing policy that the benchmark scores like any other.

``AgentPolicy(run_dir)(case, day)`` → (prices, mop), ready for ``evaluate``:

- a day-ahead agent (``StackelbergMOP-*``) posts the 24 prices its deterministic policy picks from the
  day's observation (normalised with the statistics saved beside the model);
- an hourly agent (``StackelbergMOPHourly-*``) plays the day hour by hour in the hourly environment:
  the prices are the ones it posted, and ``policy.response`` is what the prosumers did (they re-plan
  each hour on expected prices, so their day is not the best response to the posted prices); the
  benchmark passes it to ``evaluate``, which then scores the day the agent's hours made.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from .. import _validate
from ..cases import HOURS, Case
from ..data import Day
from ..envs.observation import OBS_BOUND, day_features
from ..market import action_to_prices
from ..options import ENV_MOP_MODES
from ..powerflow.mop import action_to_mop_setpoints, mop_action_size
from .baselines import Policy

ALGORITHMS = ("ppo", "sac", "td3")
MODELS = ("best_model", "model")
#: the deciding part of a model alone (`save_policy`): what a finished run keeps in the repository
SLIM = "best_policy.pt"


def save_policy(model, algo: str, path: Path) -> None:
    """The part of `model` that decides, alone: the actor of SAC/TD3 (their critics only train it), the
    whole (small) policy of PPO, with the policy's constructor arguments. A tenth of the model file
    (no critics, no optimiser state), enough for `AgentPolicy` to post the same prices."""
    import torch

    policy = model.policy
    part = policy if algo == "ppo" else policy.actor
    torch.save({"algo": algo, "data": policy._get_constructor_parameters(), "state_dict": part.state_dict()}, path)


def load_policy(path: Path, algo: str | None = None):
    """The SB3 policy saved by `save_policy` (its deciding part loaded, the rest as constructed);
    ValueError when `algo` is given and the file holds another algorithm's policy."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.sac.policies import SACPolicy
    from stable_baselines3.td3.policies import TD3Policy

    saved = torch.load(path, map_location="cpu", weights_only=False)
    if algo is not None and saved.get("algo") != algo:
        raise ValueError(f"the file holds a {saved.get('algo')} policy, config.json says {algo}")
    policy = {"ppo": ActorCriticPolicy, "sac": SACPolicy, "td3": TD3Policy}[saved["algo"]](**saved["data"])
    (policy if saved["algo"] == "ppo" else policy.actor).load_state_dict(saved["state_dict"])
    policy.set_training_mode(False)
    return policy


def agent_files(run: Path, which: str = "best_model") -> list[Path]:
    """The files `AgentPolicy(run, which)` reads: config.json, the model (the slim `SLIM` file where
    it exists, else ``<which>.zip``, else ``model.zip``) and its observation statistics."""
    if which == "best_model" and (run / SLIM).is_file():
        model = run / SLIM
    else:
        model = run / f"{which}.zip" if (run / f"{which}.zip").is_file() else run / "model.zip"
    stem = "best_model" if model.name == SLIM else model.stem
    return [run / "config.json", model, run / f"{stem}_vecnormalize.pkl"]


def read_config(run: Path) -> dict:
    """A run folder's config.json, checked: a JSON object naming a known algorithm, an environment of
    this package and a MOP mode; ValueError naming the folder and the field."""
    from ..envs import ENV_IDS

    path = run / "config.json"
    if not path.is_file():
        raise ValueError(f"run_dir: {str(run)!r} is not a training run folder (no config.json)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"run_dir: {path} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"run_dir: {path} must hold a JSON object, got {type(config).__name__}")  # noqa: TRY004 - bad input is a ValueError
    allowed_values = {"algo": ALGORITHMS, "env_id": tuple(ENV_IDS), "mop": ENV_MOP_MODES}
    for key, allowed in allowed_values.items():
        value = config.get(key, {"env_id": "StackelbergMOP-v1", "mop": "opf"}.get(key))
        if value not in allowed:
            raise ValueError(f"run_dir: {path}: {key}: expected one of {list(allowed)}, got {value!r}")
    return config


class AgentPolicy(Policy):
    """A training run's saved agent. run_dir: the run's folder (config.json, the model .zip, its
    ``_vecnormalize.pkl``); which: "best_model" (best validation score; the final "model" when no
    validation ran) or "model". ValueError names a folder that holds no agent."""

    def __init__(self, run_dir: str | Path, which: str = "best_model"):
        from stable_baselines3 import PPO, SAC, TD3

        super().__init__()
        run = _validate.path("run_dir", run_dir, "an agent's run folder")
        if which not in MODELS:
            raise ValueError(f"which: must be 'best_model' or 'model', got {which!r}")
        config = read_config(run)
        _, model_file, stats = agent_files(run, which)
        if not model_file.is_file():
            raise ValueError(f"run_dir: {run} holds no model ({SLIM} or .zip); is the run still training?")
        algo = {"ppo": PPO, "sac": SAC, "td3": TD3}[config["algo"]]
        if config.get("normalize_obs", True) and not stats.is_file():
            raise ValueError(f"run_dir: {stats} is missing; the agent was trained on normalised observations "
                             "(config.json's normalize_obs), so without them it would post other prices")
        try:
            self.model = (load_policy(model_file, config["algo"]) if model_file.name == SLIM
                          else algo.load(model_file, device="cpu"))
        except Exception as err:  # noqa: BLE001 - SB3/zipfile/pickle/torch raise many kinds; all mean "not a model"
            raise ValueError(f"run_dir: {model_file} is not a loadable {config['algo']} model "
                             f"({type(err).__name__}: {err})"[:300]) from None
        self.env_id = config.get("env_id", "StackelbergMOP-v1")
        self.hourly = "Hourly" in self.env_id
        self.mop = config.get("mop", "opf")
        self.name = f"{config['algo']}{'-hourly' if self.hourly else ''}-{self.mop}"
        self.response = None
        self._norm = None
        if stats.exists():
            try:
                with stats.open("rb") as fh:
                    self._norm = pickle.load(fh)
                dim = self.model.observation_space.shape[0]
                if np.shape(self._norm.obs_rms.mean) != (dim,):
                    raise ValueError(f"statistics of {np.shape(self._norm.obs_rms.mean)} values for {dim} observations")
            except Exception as err:  # noqa: BLE001 - unpickling raises anything; all mean "not the statistics"
                raise ValueError(f"run_dir: {stats} is not the model's observation statistics "
                                 f"({type(err).__name__}: {err})"[:300]) from None
        self._envs: dict[str, object] = {}

    def check(self, case: Case) -> None:
        """ValueError unless the model fits `case` in its game: its observation size is what the
        environment of its ``env_id`` gives for this case (a config that names another game or a
        model trained on another case are refused before a day is scored)."""
        from ..envs.observation import day_layout

        size = max(s.stop for s in day_layout(case).values())
        if self.hourly:
            size += 3 + len(case.batteries) + len(case.prosumers) + HOURS
        want = self.model.observation_space.shape[0]
        if want != size:
            raise ValueError(f"agent {self.name}: its model observes {want} values; {self.env_id} on case "
                             f"{case.name!r} gives {size} (config.json's env_id or the case does not match the model)")
        actions = 1 if self.hourly else HOURS
        if self.mop == "agent":
            actions += 2 * len(case.mop) if self.hourly else mop_action_size(case)
        if self.model.action_space.shape != (actions,):
            raise ValueError(f"agent {self.name}: its model acts with {self.model.action_space.shape[0]} values; "
                             f"{self.env_id} with mop {self.mop!r} on case {case.name!r} takes {actions} "
                             "(config.json's mop or env_id does not match the model)")

    def _act(self, obs: np.ndarray) -> np.ndarray:
        want = self.model.observation_space.shape
        if obs.shape != want:
            raise ValueError(f"agent {self.name}: its model observes {want[0]} values, this case's "
                             f"{self.env_id} gives {obs.shape[0]} (config.json's env_id or case does not match "
                             "the model)")
        if self._norm is not None:
            obs = np.clip((obs - self._norm.obs_rms.mean) / np.sqrt(self._norm.obs_rms.var + self._norm.epsilon),
                          -self._norm.clip_obs, self._norm.clip_obs).astype(np.float32)
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action)

    def decide(self, case: Case, day: Day):
        if self.hourly:
            return self._play_hours(case, day)
        self.response = None
        action = self._act(day_features(case, day).clip(-OBS_BOUND, OBS_BOUND))
        prices, _ = action_to_prices(case, day, action[:HOURS])
        mop = self.mop
        if mop == "agent":
            mop = action_to_mop_setpoints(case, action[HOURS:].reshape(2, len(case.mop), HOURS))
        return prices, mop

    def _play_hours(self, case: Case, day: Day):
        from ..envs import StackelbergMOPHourlyEnv

        env = self._envs.get(case.fingerprint)
        if env is None:
            env = self._envs[case.fingerprint] = StackelbergMOPHourlyEnv(case=case, days=[day], split="test",
                                                                         mop=self.mop)
        obs, _ = env.reset(options={"day": day})
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(self._act(obs))
            done = terminated or truncated
        self.response = env.plan  # a day cut short by a failed hour fails to score as well
        return env.posted.copy(), env.setpoints.copy() if self.mop == "agent" else self.mop
