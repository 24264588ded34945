"""A training run's resumable state, written atomically: a run killed at any point continues with the
same command, and continues exactly (the same parameters as an uninterrupted run, on DummyVecEnv).

A checkpoint is a folder ``<run>/checkpoint/`` holding

- ``model.zip``: the SB3 model (parameters, optimisers, step and update counters, the pending
  observation ``_last_obs``);
- ``replay_buffer.pkl``: an off-policy algorithm's replay buffer;
- ``vecnormalize.pkl``: the observation statistics;
- ``best_model.zip`` (+ ``_vecnormalize.pkl``): the best validated model so far;
- ``state.pkl``: the random generators (Python's, NumPy's global one, torch's, the action space's,
  each environment's), each environment's pending day, the validation callback's state and the
  wall time spent so far.

It is taken only where the state is whole: at the start of a rollout (after the previous update, before
any step of the next) and when every environment stands at the start of a day. It is written to
``checkpoint.tmp/`` and renamed into place (the previous one kept as ``checkpoint.old/`` until then),
so a kill while writing leaves the last complete checkpoint.
"""

from __future__ import annotations

import pickle
import random
import shutil
from pathlib import Path

import numpy as np

FOLDER, TMP, OLD = "checkpoint", "checkpoint.tmp", "checkpoint.old"


def _base_envs(venv):
    """The environments of a DummyVecEnv (unwrapped), or None for a vector env whose members live in
    other processes."""
    envs = getattr(venv, "envs", None)
    return None if envs is None else [e.unwrapped for e in envs]


def at_day_start(venv) -> bool:
    """Whether every environment stands at the start of a day (always, for the day-ahead game)."""
    envs = _base_envs(venv)
    return envs is None or all(getattr(e, "hour", 0) == 0 for e in envs)


def latest(run: Path) -> Path | None:
    """The run's last complete checkpoint folder, or None."""
    for name in (FOLDER, OLD):
        if (run / name / "state.pkl").is_file():
            return run / name
    return None


def save(run: Path, model, venv, extra: dict) -> Path:
    """Write the checkpoint of `model` training on `venv` (the inner vector env, under any
    VecNormalize) into ``run/checkpoint`` atomically; `extra` is stored in state.pkl as it is."""
    import torch
    from stable_baselines3.common.vec_env import VecNormalize

    tmp = run / TMP
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    if getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    norm = model.get_vec_normalize_env()
    if isinstance(norm, VecNormalize):
        norm.save(str(tmp / "vecnormalize.pkl"))
    for name in ("best_model.zip", "best_model_vecnormalize.pkl", "best.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, tmp / name)
    envs = _base_envs(venv)
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "action_space": model.action_space.np_random.bit_generator.state,
             "envs": None if envs is None else [(e.day, e.np_random.bit_generator.state) for e in envs],
             "original_obs": None if not isinstance(norm, VecNormalize) else norm.old_obs,
             **extra}
    with (tmp / "state.pkl").open("wb") as fh:
        pickle.dump(state, fh)
    final, old = run / FOLDER, run / OLD
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(folder: Path) -> dict:
    with (folder / "state.pkl").open("rb") as fh:
        return pickle.load(fh)


def restore_envs(venv, state: dict):
    """Put each environment of `venv` (DummyVecEnv, not yet reset) back on its pending day with its
    generator as it was; returns the observations (unnormalised). Vector envs in other processes are
    reset afresh (the run then continues, though not bit for bit)."""
    envs = _base_envs(venv)
    if envs is None or state.get("envs") is None:
        return venv.reset()
    venv.set_options([{"day": day} for day, _ in state["envs"]])
    obs = venv.reset()
    for env, (_, rng) in zip(envs, state["envs"]):
        env.np_random.bit_generator.state = rng
    return obs


def restore_generators(model, state: dict) -> None:
    """The process-wide and the model's random generators as they were at the checkpoint (after the
    model is loaded: SB3 reseeds them while loading)."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


def restore_best(run: Path, folder: Path) -> None:
    """The best model as of the checkpoint: evaluations after it are run again, so their best goes."""
    for name in ("best_model.zip", "best_model_vecnormalize.pkl", "best.json"):
        if (folder / name).is_file():
            shutil.copy2(folder / name, run / name)
        else:
            (run / name).unlink(missing_ok=True)


def remove(run: Path) -> None:
    """Delete the run's checkpoints (a finished run keeps its final and best models only)."""
    for name in (FOLDER, TMP, OLD):
        shutil.rmtree(run / name, ignore_errors=True)
