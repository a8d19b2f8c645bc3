"""Fixtures shared by the conformance plans."""

import pytest

from tests.helpers import register_client

# The Basic plan runs once per client authentication method (and so does Form Post).
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@pytest.fixture(params=AUTH_METHODS)
def rp(app, request):
    """The plan's client, registered once per client authentication method."""
    return register_client(app, token_endpoint_auth_method=request.param)
