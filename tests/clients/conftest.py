"""Fixtures: the real IdP with the demo portals registered, and each portal served on a free
port. Module scope: the servers stop before the next module's in-process tests reset the
shared test database (TEST_DATABASE_URL) under them."""

from __future__ import annotations

import pytest

from .servers import Stack, idp_stack, portal

# Extra citizens, one per test journey, so one journey's second factor or consent does not
# change what another sees (the seed's demo citizen has neither).
PASSWORD = "Portal-Test-1"
SOCIAL_CITIZEN = "001199000102"
NODE_CITIZEN = "001199000103"
LEVEL2_CITIZEN = "001199000104"
DEMO_PID, DEMO_PASSWORD = "001199000001", "Citizen-Demo-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    with idp_stack(tmp_path_factory.mktemp("portals")) as running:
        running.add_citizen(SOCIAL_CITIZEN, PASSWORD, name="Trần Văn Bình")
        running.add_citizen(NODE_CITIZEN, PASSWORD, name="Lê Thị Cúc")
        running.add_citizen(LEVEL2_CITIZEN, PASSWORD, level=2, name="Phạm Minh Đức")
        yield running


@pytest.fixture(scope="module")
def public_services(stack) -> str:
    with portal(stack, "public_services") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def social_insurance(stack) -> str:
    with portal(stack, "social_insurance") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def node_example(stack) -> str:
    with portal(stack, "node_example") as base_url:
        yield base_url
