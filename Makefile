# Two commands do everything on a fresh machine:
#   make demo   - set up .venv (first time), build the demo data, train baseline + SPN, print PSNR/SSIM
#   make test   - set up .venv (first time), run the whole test suite (the fast unit tier alone: pytest -m "not e2e")
#   make lint   - flake8 and isort with setup.cfg (BasicSR's style)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint install clean-venv

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	# basicsr is an sdist that needs torch to build: build it against the torch above, not a downloaded one
	$(PY) -m pip install --no-build-isolation basicsr==1.4.2
	$(PY) -m pip install --no-build-isolation -e '.[demo,test,lint]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m mclir_basicsr.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(PY) -m flake8 mclir_basicsr tests benchmarks datasets setup.py
	$(PY) -m isort --check-only mclir_basicsr

clean-venv:
	rm -rf $(VENV)
