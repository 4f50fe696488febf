# Two commands do everything on a fresh machine:
#   make demo   - set up .venv (first time), build the demo data, train baseline + SPN, print PSNR/SSIM
#   make test   - set up .venv (first time), run the whole test suite (the fast unit tier alone: pytest -m "not e2e")
#   make lock   - refresh requirements/constraints.txt (the pinned versions every install uses) with pip-compile
#   make lint   - flake8 and isort with setup.cfg (BasicSR's style)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every install is held to the versions the project's numbers were measured with (pip-compile's output; `make lock`
# refreshes it). `make install CONSTRAINTS=` installs the newest releases instead.
CONSTRAINTS ?= requirements/constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.PHONY: demo test lint install lock clean-venv

$(VENV)/.installed: setup.py $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIN) setuptools wheel
	$(PY) -m pip install $(PIN) torch torchvision
	# basicsr is an sdist that needs torch to build: build it against the torch above, not a downloaded one
	$(PY) -m pip install $(PIN) --no-build-isolation basicsr
	$(PY) -m pip install $(PIN) --no-build-isolation -e '.[demo,test,lint,bench]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m mclir_basicsr.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(PY) -m flake8 mclir_basicsr tests benchmarks datasets setup.py
	$(PY) -m isort --check-only mclir_basicsr

# Resolve the newest releases that setup.py allows (all extras) into $(CONSTRAINTS), then install them. Rerun the
# demo and the suite after it, and update the measured versions in docs/development.md (a unit test compares them).
lock: $(VENV)/.installed
	$(PY) -m pip install -q pip-tools
	CUSTOM_COMPILE_COMMAND='make lock' $(PY) -m piptools compile --upgrade --no-build-isolation --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links --annotation-style=line \
		--extra demo --extra test --extra lint --extra bench -o requirements/constraints.txt setup.py requirements/lock.in
	rm -f $(VENV)/.installed
	$(MAKE) install

clean-venv:
	rm -rf $(VENV)
