"""Shared test configuration: hypothesis profiles and the two anyio backends."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


pytest_plugins = ["pytester"]

try:
    import mcp  # noqa: F401
except ImportError:  # the optional extra mcp is not installed: skip what needs it
    collect_ignore = [
        "mce/mcp",
        "docs/mcp.md",
        "tests/support/mcp_server.py",
        "tests/support/mcp_served.py",
    ]
