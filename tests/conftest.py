import pytest

import stackelberg_mop as sm


@pytest.fixture(scope="session")
def case():
    return sm.load_case("ieee33-mop")


@pytest.fixture(scope="session")
def day(case):
    return sm.reference_day(case)
