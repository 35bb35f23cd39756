PY ?= .venv/bin/python

.PHONY: test bench lint
test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check .

bench:
	$(PY) bench/run_all.py
