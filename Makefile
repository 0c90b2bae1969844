# One entry point: `make test` and `make demo` both build the virtual environment from this
# project's own files first, so a fresh machine needs only Python 3.10+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test demo lint bench clean arm64-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[device,minutiae,train,dev,peers,jetson]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/biolock demo

bench: $(STAMP)
	$(BIN)/biolock bench

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# The emulated board check (docs/boards.md): needs root on a Debian/Ubuntu host; not part of `make test`.
# ARM64_FLAGS="--target trixie" (Python 3.13) or "--target jammy" (Ubuntu 22.04 / JetPack 6, Python 3.10).
arm64-check:
	nice -n 10 bash deploy/arm64/check.sh $(ARM64_FLAGS)
