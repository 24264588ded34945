"""The package's vocabularies, defined once: every module and every argument check reads them here."""

#: hours in a day; every price vector and profile has this length (Δt = 1 h)
HOURS = 24
#: the splits of the SimBench year into whole weeks (`data.days`)
SPLITS = ("train", "val", "test")
#: where a day can come from: a split, or the reference day of MODEL.md
DAY_SOURCES = ("reference", *SPLITS)
#: how the DNO's dispatch treats the MOP: optimised with the network ("opf") or switched off ("off")
MOP_MODES = ("opf", "off")
#: the environments' MOP modes: the dispatch's, and "agent" (the action sets the MOP's set-points)
ENV_MOP_MODES = ("opf", "agent", "off")
#: voltage limits in the dispatch: constraints ("hard"), priced excess ("soft") or absent ("none")
VOLTAGE_MODES = ("hard", "soft", "none")
#: network formulations of the dispatch: the second-order-cone relaxation or linear DistFlow
FORMULATION_NAMES = ("socp", "lindistflow")
