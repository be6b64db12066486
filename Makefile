# The two commands a fresh machine needs (see README):
#   make demo   install everything, then ingest the bundled documents and answer offline
#   make test   install the test tools too, then run every test
.PHONY: demo test

demo:
	bash scripts/setup.sh
	.venv/bin/python -m llm_magics.demo

test:
	bash scripts/setup.sh --dev
	.venv/bin/python -m pytest

