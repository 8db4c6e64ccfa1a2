# MineSAR: `make demo` and `make test` set everything up on a fresh Debian 12 machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := .venv
PYTHON     := $(VENV)/bin/python
SYSTEM_PY  := /usr/bin/python3
STAMP      := $(VENV)/.requirements-installed
PLUGINS    := .build/plugins
DEB_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-scipy \
                python3-matplotlib python3-venv xvfb xauth
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUN_ENV    := QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=$(CURDIR)/.build/runtime

.PHONY: help setup system-packages demo test zip clean

help:
	@echo "make demo   - set up, then run the whole pipeline (import, SBAS, detection, activity) into demo-output/"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make setup  - Debian packages, .venv with the Python requirements, plugin link (idempotent)"
	@echo "make zip    - dist/minesar.zip to install the plugin into QGIS desktop"

setup: system-packages $(STAMP) $(PLUGINS)/minesar
	@mkdir -p .build/runtime && chmod 700 .build/runtime

# Installs only what is missing, so a set-up machine pays one dpkg query.
system-packages:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then \
			echo "Missing Debian packages:" $$missing; \
			echo "Install them as root, then run make again: apt-get install --no-install-recommends" $$missing; \
			exit 1; \
		fi; \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): requirements.txt constraints.txt
	@test -x $(PYTHON) || $(SYSTEM_PY) -m venv --system-site-packages $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@$(PYTHON) -c "import numpy, sys; sys.exit(numpy.__version__.startswith('1.') is False)" || \
		{ echo "numpy 2 reached the venv; Debian's GDAL/QGIS need numpy 1.x"; exit 1; }
	@# Lets the venv's Python import this checkout as the package "minesar".
	@site=$$($(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
		echo "$(CURDIR)/$(PLUGINS)" > $$site/minesar-dev.pth
	@touch $@

# QGIS finds plugins by folder name: expose this checkout as "minesar".
$(PLUGINS)/minesar:
	@mkdir -p $(PLUGINS)
	@ln -sfn ../.. $(PLUGINS)/minesar

demo: setup
	$(RUN_ENV) $(PYTHON) scripts/demo.py --output demo-output

test: setup
	$(RUN_ENV) $(PYTHON) -m pytest

zip:
	@mkdir -p dist && rm -f dist/minesar.zip
	@tmp=$$(mktemp -d) && mkdir $$tmp/minesar && \
		git archive HEAD -- metadata.txt __init__.py plugin.py LICENSE README.md icons core models \
			processing_provider ui | tar -x -C $$tmp/minesar && \
		(cd $$tmp && $(SYSTEM_PY) -m zipfile -c $(CURDIR)/dist/minesar.zip minesar) && rm -rf $$tmp
	@echo "dist/minesar.zip: QGIS > Plugins > Manage and Install Plugins > Install from ZIP"

clean:
	rm -rf .build dist demo-output .pytest_cache
