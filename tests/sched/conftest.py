"""The scheduler's ``@pytest.mark.anyio`` tests run under both event loops."""

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend
