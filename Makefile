# Deep Learning for Computer Music: every target sets itself up on a fresh machine.
#   make book     virtual environment + data caches + execute every notebook + HTML in _build/html
#   make test     the same set-up, then the whole test suite (unit, notebooks, built HTML in Chromium)
#   make lab      JupyterLab on the notebooks (their Lab edition in _build/lab) with working widgets
#   make data     build the data caches only (python -m musiclab data)
#   make student  the notebooks without exercise solutions, for handing out, in _build/student
# MUSICLAB_MODE=full make book trains the full-size models (default: full with a GPU, quick without).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU wheel by default; for a GPU build install torch into .venv first (see README), this keeps it.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup data book test unit lab browser student clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --no-deps "tinysoundfont==0.3.7"
	$(BIN)/pip install --quiet -e ".[book,lab,test]"
	rm -f $(VENV)/.installed-*
	touch $@

data: setup
	$(BIN)/python -m musiclab data

book: data
	MUSICLAB_BOOK_BUILD=1 $(BIN)/jupyter-book build . --builder html
	@echo "Book written to _build/html/index.html"

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the HTML tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

unit: setup
	$(BIN)/python -m pytest -m "not notebooks and not html"

test: unit book browser
	$(BIN)/python -m pytest -m "notebooks or html"

lab: data
	$(BIN)/python -m musiclab lab-edition --notebooks notebooks --out _build/lab
	$(BIN)/jupyter lab _build/lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

student: setup
	rm -rf _build/student
	$(BIN)/python -m musiclab student --notebooks notebooks --out _build/student

clean:
	rm -rf _build
