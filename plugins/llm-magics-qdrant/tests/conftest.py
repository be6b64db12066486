import os

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_magics.testing import clean_shell, fresh_settings, ip  # noqa: E402,F401  (the shared plugin-test fixtures)
