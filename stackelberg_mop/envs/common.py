"""What both environments share: the case, the pool of days, option checks and rendering."""

from __future__ import annotations

import numpy as np

from .. import _validate
from ..cases import Case
from ..data import Day, days, reference_day
from ..data.days import check_day
from ..data.hv_prices import draw_hv_prices
from ..options import DAY_SOURCES, ENV_MOP_MODES
from ..scoring.yardstick import TariffScore, Yardstick
from .render import day_figure, figure_to_rgb

REWARD_BASELINES = (None, "tariff")
#: what `gym.make_vec` gives both vectorisation modes (registered with the IDs): a finished day is
#: reset within the step that ends it, so no step of a vector env is a dummy transition
VECTOR_KWARGS = {"autoreset_mode": "SameStep"}
HV_PRICE_MODES = ("day", "sampled")
RENDER_MODES = ["human", "rgb_array"]


def reward_options(reward_scale, violation_penalty, failure_reward) -> tuple[float, float, float]:
    """The reward's numbers, checked: scale > 0 (¥ per unit of reward), penalty >= 0 (¥ per violating
    bus-hour: a negative one would reward violations), a finite failure reward."""
    return (_validate.number("reward_scale", reward_scale, lo=0, lo_open=True, unit="¥ per unit of reward"),
            _validate.number("violation_penalty", violation_penalty, lo=0, unit="¥ per bus-hour"),
            _validate.number("failure_reward", failure_reward))


def refuse_unknown(env_cls, unknown: dict) -> None:
    """ValueError naming an option the environment does not have (and its closest valid name): a
    misspelled option is an error, not a Python TypeError from deep inside gym.make."""
    import difflib
    import inspect

    if not unknown:
        return
    valid = [p for p in inspect.signature(env_cls.__init__).parameters if p not in ("self", "unknown")]
    key = min(unknown)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    raise ValueError(f"{key}: not an option of {env_cls.__name__}" + (f"; did you mean {close[0]!r}?" if close else
                                                                       f"; options: {valid}"))


def check_seed(seed) -> int | None:
    """reset's seed: None or a whole number >= 0, as a Python int (NumPy integers too, which Gymnasium's
    seeding refuses); named here rather than by Gymnasium's seeding."""
    return None if seed is None else _validate.integer("seed", seed, lo=0)


def check_mop_mode(case: Case, mop: str) -> None:
    """The MOP mode among `options.ENV_MOP_MODES`, and one the case supports: "agent" needs MOP terminals to set."""
    _validate.choice("mop", mop, ENV_MOP_MODES)
    if mop == "agent" and len(case.mop) == 0:
        raise ValueError(f"mop: 'agent' sets the MOP's terminals, and case {case.name!r} has none; use 'opf' or 'off'")


def default_voltage_limits(mop: str, voltage_limits: str | None) -> str:
    """Hard limits when the DNO's model dispatches the MOP; soft when the MOP is off (the feeder alone
    cannot keep them on most days, hard limits would make the dispatch infeasible)."""
    if voltage_limits is not None:
        return voltage_limits
    return "soft" if mop == "off" else "hard"


class DayPool:
    """The days an environment draws from: a split of the case's SimBench year, or a given list."""

    def __init__(self, case: Case, split: str, day_list: list[Day] | None, hv_prices: str = "day"):
        self.case = case
        _validate.choice("split", split, DAY_SOURCES)
        _validate.choice("hv_prices", hv_prices, HV_PRICE_MODES)
        self.split, self.hv_prices = split, hv_prices
        if day_list is not None and (isinstance(day_list, str | bytes | dict | Day)
                                     or not hasattr(day_list, "__iter__")):
            raise ValueError(f"days: expected a list of Day objects (e.g. sm.days(case, 'test')[:5]), got "
                             f"{type(day_list).__name__} {day_list!r:.60}")
        self._given = list(day_list) if day_list is not None else None
        self._cache: dict[str, list[Day]] = {}
        if self._given is not None:
            if not self._given:
                raise ValueError("days: the list of days is empty")
            for i, d in enumerate(self._given):
                try:
                    check_day(case, d, f"days[{i}]")
                except ValueError as err:
                    raise ValueError(f"days[{i}]: {err}") from None

    def of(self, split: str) -> list[Day]:
        if self._given is not None and split == self.split:
            return self._given
        _validate.choice("options['split']", split, DAY_SOURCES)
        if split not in self._cache:
            self._cache[split] = [reference_day(self.case)] if split == "reference" else days(self.case, split)
        return self._cache[split]

    def draw(self, rng: np.random.Generator, options: dict | None) -> Day:
        """options: {"split": ..., "day": index into the split, a date "2016-07-04", or a `Day`}; without
        "day" a day of the split is drawn with `rng`. With hv_prices="sampled" the day's HV buy price is
        replaced by a draw around it (`data.hv_prices.draw_hv_prices`; Wang et al. 2024), also from `rng`."""
        day = self._pick(rng, options)
        return draw_hv_prices(day, rng) if self.hv_prices == "sampled" else day

    def _pick(self, rng: np.random.Generator, options: dict | None) -> Day:
        options = {} if options is None else options
        _validate.instance("options", options, dict, "a dict with 'split' and/or 'day'")
        unknown = set(options) - {"split", "day"}
        if unknown:
            raise ValueError(f"options: unknown keys {sorted(unknown)}; allowed: 'split', 'day'")
        pool = self.of(options.get("split", self.split))
        choice = options.get("day")
        if choice is None:
            return pool[int(rng.integers(len(pool)))]
        if isinstance(choice, Day):
            return check_day(self.case, choice, "options['day']")
        if isinstance(choice, str):
            for d in pool:
                if d.name == choice:
                    return d
            raise ValueError(f"options['day']: no day named {choice!r} in this split")
        try:
            index = _validate.integer("options['day']", choice, lo=0, hi=len(pool) - 1)
        except ValueError as err:
            raise ValueError(f"{err} (an index into the split's {len(pool)} days, a date 'YYYY-MM-DD' "
                             "or a Day)") from None
        return pool[index]


def yardstick_info(yardstick: Yardstick | None, tariff: TariffScore, day: Day, objective: float) -> dict:
    """The final step's yardstick keys (`yardstick.KEYS`): tariff_objective always (J_tariff of the
    environment's own game, its reward baseline); optimum_objective J*, optimum_bound, regret J − J*
    and normalised_regret on every day the optimum table holds (proven or not) when the game is the
    one J* was solved for. They are left out elsewhere (a training day, mop "off" ...), not NaN, so
    that equal steps give equal infos; regret is NaN only when the day itself failed to solve."""
    info = yardstick.judge(day, objective) if yardstick is not None else {}
    if not np.isfinite(info.get("optimum_objective", np.nan)):  # no row for this day: no J*-based keys
        info = {}
    info["tariff_objective"] = float(tariff(day))
    return info


def render_day(env, outcome, prices, title: str):
    """The `render()` of both environments."""
    if env.render_mode is None:
        return None
    if env.day is None:
        raise RuntimeError("render: call reset() first (there is no day to draw)")
    fig = day_figure(env.case, env.day, outcome, prices, title)
    if env.render_mode == "rgb_array":
        return figure_to_rgb(fig)
    import matplotlib.pyplot as plt  # "human": an interactive window

    if env._window is None:
        env._window = plt.figure(figsize=fig.get_size_inches())
    env._window.clf()
    plt.imshow(figure_to_rgb(fig))
    plt.axis("off")
    plt.pause(0.001)
    return None
