"""The three source papers' own systems and claims, each on its shipped case:

- the Stackelberg game with a MOP (Lou et al. 2025): its three scenarios (`scenarios`) and the
  scenarios at the bi-level optimum (`scenario_comparison`), on ``ieee33-mop``;
- cooperating distribution substation areas (Wang et al. 2024): the DSA market (`dsa_market`), its
  decentralised ADMM (`dsa_admm`), benefit allocation and stochastic prices (`substation_areas`), on
  ``substation-areas``;
- LMP clearing with peer-to-peer sharing (Song et al. 2024): its claims (`p2p_sharing`), on
  ``p2p-sharing``.
"""
