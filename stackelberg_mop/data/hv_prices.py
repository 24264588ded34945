"""Uncertain HV prices (Wang et al. (2024) §4.1): Monte-Carlo samples around the tariff, reduced by k-means.

The DNO's purchase price from the HV grid is uncertain. Sample s, hour t:

    buy_s,t = max(buy_t · (1 + σ z_s,t), sell_t),   z_s,t ~ N(0, 1) independent,

σ = `relative_sigma` (default 0.10: a 10 % standard deviation around the time-of-use forecast; the
paper's variance was lost with its figures). The truncation at the sell price keeps buy >= sell, so
the DNO's grid cost stays convex in every scenario; the HV sell price is kept as forecast. The
samples (default 1,000) are reduced by k-means (scipy's `kmeans2`, k-means++ start, fixed seed) to
weighted scenarios (default 10): each scenario is the mean of its cluster and its weight the
cluster's share of the samples, so the weights sum to one and the weighted scenarios have exactly
the samples' mean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2

from .. import _validate
from ..cases import HOURS
from .days import Day

DEFAULT_RELATIVE_SIGMA = 0.10


@dataclass(frozen=True, eq=False)
class PriceScenarios:
    """Weighted HV price scenarios. buy_price, sell_price: (S, 24) ¥/MWh; weight: (S,), sums to 1.

    sample_mean: (24,) ¥/MWh, the mean buy price of the Monte-Carlo samples the scenarios came from.
    """

    buy_price: np.ndarray
    sell_price: np.ndarray
    weight: np.ndarray
    sample_mean: np.ndarray

    def __len__(self) -> int:
        return self.weight.size

    def days(self, day: Day) -> list[Day]:
        """`day` once per scenario, with the scenario's HV prices."""
        return [dataclasses.replace(day, buy_price=b, sell_price=s) for b, s in zip(self.buy_price, self.sell_price)]

    def expected_day(self, day: Day) -> Day:
        """`day` with the probability-weighted mean HV prices."""
        return dataclasses.replace(day, buy_price=self.weight @ self.buy_price, sell_price=self.weight @ self.sell_price)


def sample_hv_prices(buy_price, sell_price, n_samples: int = 1000, relative_sigma: float = DEFAULT_RELATIVE_SIGMA,
                     rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """(n_samples, 24) buy-price samples, ¥/MWh: Gaussian around `buy_price`, truncated at `sell_price`."""
    buy, sell = np.asarray(buy_price, float), np.asarray(sell_price, float)
    if buy.shape != (HOURS,) or sell.shape != (HOURS,):
        raise ValueError(f"buy_price, sell_price: expected ({HOURS},) ¥/MWh each, got {buy.shape}, {sell.shape}")
    relative_sigma = _validate.number("relative_sigma", relative_sigma, lo=0)
    n_samples = _validate.integer("n_samples", n_samples, lo=1)
    rng = np.random.default_rng(rng)
    z = rng.standard_normal((n_samples, HOURS))
    return np.maximum(buy * (1.0 + relative_sigma * z), sell)


def hv_price_scenarios(day: Day, n_samples: int = 1000, n_scenarios: int = 10,
                       relative_sigma: float = DEFAULT_RELATIVE_SIGMA, seed: int = 0) -> PriceScenarios:
    """Monte-Carlo samples of the day's HV buy price reduced by k-means to weighted scenarios.

    Deterministic for a given seed. Clusters that k-means leaves empty are dropped, so there may be
    fewer than `n_scenarios` scenarios (never for the defaults).
    """
    _validate.instance("day", day, Day, "a Day (reference_day, simbench_day, days)")
    n_samples = _validate.integer("n_samples", n_samples, lo=1)
    n_scenarios = _validate.integer("n_scenarios", n_scenarios, lo=1, hi=n_samples)
    seed = _validate.integer("seed", seed, lo=0)
    samples = sample_hv_prices(day.buy_price, day.sell_price, n_samples, relative_sigma, seed)
    _, label = kmeans2(samples, n_scenarios, minit="++", seed=seed)
    used = np.unique(label)
    centres = np.array([samples[label == k].mean(axis=0) for k in used])  # exact cluster means
    weight = np.array([np.mean(label == k) for k in used])
    return PriceScenarios(buy_price=centres, sell_price=np.tile(day.sell_price, (used.size, 1)), weight=weight,
                          sample_mean=samples.mean(axis=0))


def draw_hv_prices(day: Day, rng: np.random.Generator, relative_sigma: float = DEFAULT_RELATIVE_SIGMA,
                   scenarios: PriceScenarios | None = None) -> Day:
    """`day` with one random draw of its HV prices (for environments with uncertain HV prices).

    With `scenarios`, one scenario is picked with its weight; otherwise a fresh Gaussian sample as in
    `sample_hv_prices`. Uses only `rng`, so an environment seeded through ``reset(seed=...)`` is reproducible.
    """
    if scenarios is not None:
        s = int(rng.choice(len(scenarios), p=scenarios.weight))
        return dataclasses.replace(day, buy_price=scenarios.buy_price[s], sell_price=scenarios.sell_price[s])
    buy = sample_hv_prices(day.buy_price, day.sell_price, 1, relative_sigma, rng)[0]
    return dataclasses.replace(day, buy_price=buy)
