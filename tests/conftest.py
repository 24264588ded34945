import json
from importlib import resources

import pytest

import stackelberg_mop as sm


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
