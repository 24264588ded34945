import json
import os
from importlib import resources

import pytest
from hypothesis import HealthCheck, settings

import stackelberg_mop as sm

# Hypothesis: "dev" (the default) draws new examples on every run, so local runs keep exploring; "ci"
# (set by .ci/run) draws the same examples on every run, so a CI verdict does not depend on luck. A
# failure found either way gets an @example that pins it.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def case():
    return sm.load_case("ieee33-mop")


@pytest.fixture(scope="session")
def day(case):
    return sm.reference_day(case)


@pytest.fixture
def spec():
    """The shipped case's JSON as a dict, fresh for each test to edit."""
    return json.loads(resources.files("stackelberg_mop.cases").joinpath("ieee33-mop.json").read_text())


#: DGs as docs/plans/seed003-p2p.md proposes them (Song et al.'s (2024) buses 10, 16, 19, 23, 30), on the
#: default case, with an import limit that makes them marginal in most hours
DG_SECTIONS = {
    "generators": {"bus": [9, 15, 18, 22, 29], "p_max_mw": [0.8, 0.6, 0.8, 0.6, 0.7],
                   "q_min_mvar": [-0.4, -0.3, -0.4, -0.3, -0.35], "q_max_mvar": [0.4, 0.3, 0.4, 0.3, 0.35],
                   "cost_quadratic_cny_per_mw2h": [1000, 1200, 800, 1100, 900],
                   "cost_linear_cny_per_mwh": [380, 400, 360, 390, 370], "cost_fixed_cny_per_h": [5, 0, 0, 0, 0]},
    "grid": {"import_limit_mw": 1.8},
}


@pytest.fixture(scope="session")
def dg_case():
    """The default case with five DGs and a 1.8 MW import limit."""
    return sm.cases.case_from_dict({"extends": "ieee33-mop", "name": "ieee33-mop-dg", **DG_SECTIONS})
