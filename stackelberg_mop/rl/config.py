"""Training settings as dataclasses: one field per flag, its help text in the field (CleanRL's style).

    @dataclass
    class Config(RunConfig):
        n_steps: int = arg(256, "steps per env between PPO updates")

    config = parse_config(Config, argv)     # --n-steps 512 ...; --help lists every field with its default
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from .. import _validate
from ..argparsing import Parser
from ..options import ENV_MOP_MODES


def arg(default, help: str):
    """A config field with its flag's help text."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class RunConfig:
    """The settings every SB3 training script shares; each script's Config adds its algorithm's
    hyper-parameters and its defaults."""

    name: str = arg("run", "run folder name under --out")
    algo: str = arg("ppo", "the SB3 algorithm (fixed per script)")
    env_id: str = arg("StackelbergMOP-v1", "the Gymnasium ID trained on")
    mop: str = arg("opf", "opf (the DNO dispatches the MOP), agent or off")
    reward_baseline: str = arg("tariff", "tariff (reward = ¥ gained over the HV tariff) or none (reward = −F)")
    reward_scale: float = arg(1e3, "¥ per unit of reward")
    seed: int = arg(0, "random seed (environments, network initialisation)")
    total_timesteps: int = arg(20_000, "environment steps to train")
    n_envs: int = arg(2, "parallel environments")
    subprocess: bool = arg(False, "one process per environment (SubprocVecEnv) instead of DummyVecEnv")
    normalize_obs: bool = arg(True, "running mean/std normalisation of observations")
    eval_every: int = arg(2_000, "environment steps between validation runs")
    eval_days: int = arg(42, "validation days per run (evenly spaced, fixed; 42 = all)")
    checkpoint_every: int = arg(5_000, "environment steps between resumable checkpoints")
    progress_bar: bool = arg(True, "show a progress bar")
    out: str = arg("results/train", "folder of the run folders")
    learning_rate: float = arg(3e-4, "optimiser step size")
    batch_size: int = arg(64, "minibatch size")
    gamma: float = arg(0.99, "discount factor")
    net_arch: str = arg("", "hidden layer sizes, e.g. 256,256 (empty: SB3's default for the algorithm)")


#: fields that may be 0 (all other integers must be >= 1)
ZERO_OK = ("seed", "learning_starts", "critic_warmup", "mixed_days")
REWARD_BASELINE_FLAGS = ("tariff", "none")
#: float fields that must be > 0 (the others >= 0)
POSITIVE = ("learning_rate", "probe", "reward_scale")
#: float fields that may be negative (log standard deviations)
SIGNED = ("log_std_init",)
#: behaviour cloning's losses (`rl.bc`)
LOSSES = ("mse", "regret")
#: fields that do not change what a run computes: a resumed run may differ in them
COSMETIC = ("progress_bar", "out")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_config(config) -> None:
    """ValueError naming the first field of a training config that cannot work: integers >= 1 (seed,
    learning_starts, critic_warmup >= 0), floats finite and >= 0 (learning_rate, probe, reward_scale
    > 0; gamma and gae_lambda <= 1; log_std_init any finite number), mop, reward_baseline, net_arch and
    loss among their choices."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(f.default, bool):
            _validate.flag(flag(f.name), value)
        elif isinstance(f.default, int):
            _validate.integer(flag(f.name), value, lo=0 if f.name in ZERO_OK else 1)
        elif isinstance(f.default, float):
            _validate.number(flag(f.name), value, lo=None if f.name in SIGNED else 0, lo_open=f.name in POSITIVE,
                          hi=1 if f.name in ("gamma", "gae_lambda") else None)
    from ..envs import ENV_IDS

    fixed = type(config).__dataclass_fields__["algo"].default
    if config.algo != fixed:
        raise ValueError(f"--algo: this script trains {fixed!r}; use the script of {config.algo!r} instead")
    _validate.choice("--env-id", config.env_id, tuple(ENV_IDS))
    _validate.choice("--mop", config.mop, ENV_MOP_MODES)
    _validate.choice("--reward-baseline", config.reward_baseline, REWARD_BASELINE_FLAGS)
    layers(getattr(config, "net_arch", ""))
    for flag_name in ("actor_layers", "critic_layers"):
        if hasattr(config, flag_name):
            layers(getattr(config, flag_name), flag(flag_name), empty_ok=False)
    name = str(config.name)
    if not name.strip() or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"--name: a run folder's name (no path separators), got {name!r}")
    if not str(config.out).strip():
        raise ValueError("--out: the folder of the run folders, got ''")
    if getattr(config, "batch_size", 2) < 2:
        raise ValueError(f"--batch-size: must be >= 2, got {config.batch_size}")
    if hasattr(config, "n_steps") and config.n_steps * config.n_envs < 2:
        raise ValueError(f"--n-steps: n_steps × n_envs must be >= 2 (PPO's advantage normalisation), got "
                         f"{config.n_steps} × {config.n_envs}")
    if hasattr(config, "loss"):
        _validate.choice("--loss", config.loss, LOSSES)


def layers(text: str, flag: str = "--net-arch", empty_ok: bool = True) -> list[int]:
    """Hidden layer sizes from "256,256" ([] for "" where `empty_ok`); ValueError naming `flag` otherwise."""
    try:
        sizes = [int(n) for n in str(text).split(",") if n.strip()]
    except ValueError:
        sizes = [0]
    if any(n < 1 for n in sizes) or (not sizes and not empty_ok):
        raise ValueError(f"{flag}: expected positive sizes like 256,256, got {text!r}")
    return sizes


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(text)


def parse_config(cls, argv=None):
    """argparse over the fields of a config dataclass (``--total-timesteps 20000`` etc.), each flag
    with its help text (the field's metadata) and default; a value that cannot work exits with one
    line naming the flag."""
    parser = Parser(description=cls.__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        default, text = f.default, f.metadata.get("help", " ")
        if isinstance(default, bool):
            parser.add_argument(flag(f.name), type=_bool, default=default, metavar="BOOL", help=text)
        else:
            parser.add_argument(flag(f.name), type=type(default), default=default, help=text)
    config = cls(**vars(parser.parse_args(argv)))
    try:
        check_config(config)
    except ValueError as err:
        parser.error(str(err))
    return config


def script_main(main, argv=None):
    """Run a training script's `main` from the command line: bad input (a ValueError, or a path that
    cannot be) ends with one line naming it and exit code 2, as the ``stackelberg-mop`` command."""
    import sys

    try:
        return main(argv)
    except (ValueError, OSError) as err:
        sys.stderr.write(f"{sys.argv[0]}: error: {err}\n")
        raise SystemExit(2) from None


def differences(config, saved: dict) -> list[str]:
    """The fields (other than `COSMETIC` ones) in which `config` differs from a run's saved config."""
    now = dataclasses.asdict(config)
    return [k for k in sorted(set(now) | set(saved)) if k not in COSMETIC and now.get(k) != saved.get(k)]
