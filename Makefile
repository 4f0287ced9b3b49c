# The README's commands. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint translations compile-translations clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The Dutch catalogue is compiled from the committed .po on every run (it takes a moment).
compile-translations: $(STAMP)
	@$(BIN)/pybabel compile -d web/translations >/dev/null

run: compile-translations
	$(BIN)/hub up

# Two test processes (pytest-xdist): the suite waits on its servers as much as it computes, and
# one process took 29 minutes on a 2-core machine, two 15. Each starts its own servers.
test: compile-translations
	$(BIN)/pytest -q -p no:cacheprovider -n 2

test-fast: compile-translations
	$(BIN)/pytest -q -p no:cacheprovider -m "not integration and not e2e"

bench: $(STAMP)
	@# As modules (-m): run as a script, a benchmark's folder would come first on sys.path and
	@# bench/calendar.py would stand in for Python's own calendar module.
	$(BIN)/python -m bench.web
	$(BIN)/python -m bench.mail_sync
	$(BIN)/python -m bench.recovery
	$(BIN)/python -m bench.calls
	$(BIN)/python -m bench.campaign --database sqlite --database postgresql
	$(BIN)/python -m bench.calendar

lint: $(STAMP)
	$(BIN)/ruff check hub workers web tests bench
	$(BIN)/mypy

translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations
	$(BIN)/pybabel compile -d web/translations

clean:
	rm -rf $(VENV) var
