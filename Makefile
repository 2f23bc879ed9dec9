# Two commands do everything: `make run` and `make test`. Both set up .venv first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= runs/main

.PHONY: setup run test data clean

setup: $(STAMP) data

# torch==2.13.0 first: on these machines pip takes it from a local CPU build, elsewhere it is the
# normal release. Installing it before the package keeps pip from pulling any other torch.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# Fashion-MNIST from the Debian package when apt-get exists and the data is missing (never fatal).
data:
	@sh scripts/ensure-fashion-mnist.sh

run: setup
	$(BIN)/safecompress run --resume --out $(OUT)

test: setup
	$(BIN)/python -m ruff check src tests bench
	$(BIN)/python -m ruff format --check src tests bench
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
