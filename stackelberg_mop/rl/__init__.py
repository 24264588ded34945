"""Reinforcement learning on the environments with stable-baselines3 (``pip install .[rl]``).

One script per algorithm, each with its hyper-parameters in one dataclass at the top:
``python -m stackelberg_mop.rl.ppo``, ``.sac``, ``.td3`` (day-ahead game) and ``.ppo_hourly``.
`common.AgentPolicy` turns a saved run into a pricing policy for `evaluate` and the benchmark.
"""
