# Deep Learning for Computer Music: every target sets itself up on a fresh machine.
#   make book     virtual environment + data caches + execute every notebook + HTML in _build/html
#   make test     the same set-up, then the whole test suite (unit, notebooks, both editions' HTML in Chromium)
#   make lab      JupyterLab on the notebooks (their Lab edition in _build/lab) with working widgets
#   make data     build the data caches only (python -m musiclab data)
#   make student  the notebooks without exercise solutions, for handing out, in _build/student, and
#                 their Chinese edition (text cells from the catalogues) in _build/student-zh_CN
#   make book-zh  the Chinese edition in _build/html-zh, from the same sources and the English build's
#                 executed notebooks (nothing executes twice); translations in locale/zh_CN/LC_MESSAGES
#   make po       after an edit of the English text: new .pot templates, the catalogues updated
#                 (changed messages become fuzzy, new pages get a catalogue), translation status
# MUSICLAB_MODE=full make book trains the full-size models (default: full with a GPU, quick without).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU wheel by default; for a GPU build install torch into .venv first (see README), this keeps it.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup data book book-zh po test unit lab browser student clean

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

# The other editions run Sphinx on the configuration Jupyter Book generates from _config.yml, with
# the language set on the command line. They share _build/.jupyter_cache with `make book` (myst-nb
# keeps it beside the output folder), so every notebook comes from the English build's execution.
SPHINX_CONF := _build/sphinx-conf
SPHINX := PYTHONPATH=book/_ext$${PYTHONPATH:+:$$PYTHONPATH} $(BIN)/sphinx-build -c $(SPHINX_CONF)
SPHINXOPTS ?=
TRANSLATIONS := zh_CN
# gettext_compact=0: one catalogue per page; gettext_location=0: no line numbers, so that moving text
# does not change every catalogue
GETTEXT := -D gettext_compact=0 -D gettext_location=0

$(SPHINX_CONF)/conf.py: _config.yml _toc.yml $(STAMP)
	mkdir -p $(SPHINX_CONF)
	$(BIN)/jupyter-book config sphinx . >/dev/null
	mv conf.py $@
	@# sphinxcontrib-bibtex reads bibtex_bibfiles relative to the folder of conf.py, the others the sources
	echo 'bibtex_bibfiles = ["../../" + path for path in bibtex_bibfiles]' >> $@

book-zh: book $(SPHINX_CONF)/conf.py
	MUSICLAB_BOOK_BUILD=1 $(SPHINX) -q -b html -d _build/.doctrees-zh_CN -D language=zh_CN \
	  -D locale_dirs=locale $(GETTEXT) $(SPHINXOPTS) . _build/html-zh
	@echo "Chinese edition written to _build/html-zh/index.html"

po: $(SPHINX_CONF)/conf.py
	rm -rf _build/gettext
	$(SPHINX) -q -b gettext -d _build/.doctrees-gettext -D nb_execution_mode=off $(GETTEXT) . _build/gettext
	$(BIN)/sphinx-intl update -p _build/gettext $(TRANSLATIONS:%=-l %) -d locale
	@# sphinx-intl stat exits with 1 after printing the status
	$(BIN)/sphinx-intl stat $(TRANSLATIONS:%=-l %) -d locale || true

browser:
	@{ command -v chromium && fc-list :lang=zh | grep -q .; } >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium and fonts-noto-cjk (the Chinese edition's text) for the HTML tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

unit: setup
	$(BIN)/python -m pytest -m "not notebooks and not html"

test: unit book book-zh browser
	$(BIN)/python -m pytest -m "notebooks or html"

lab: data
	$(BIN)/python -m musiclab lab-edition --notebooks notebooks --out _build/lab
	$(BIN)/jupyter lab _build/lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

student: setup
	rm -rf _build/student
	$(BIN)/python -m musiclab student --notebooks notebooks --out _build/student
	for language in $(TRANSLATIONS); do rm -rf _build/student-$$language; \
	  $(BIN)/python -m musiclab student --notebooks notebooks --language $$language --out _build/student-$$language || exit; done

clean:
	rm -rf _build
