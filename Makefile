# Two commands do everything on a fresh machine:
#   make demo   - set up .venv (first time), build the demo data, train baseline + SPN, print PSNR/SSIM
#   make test   - set up .venv (first time), run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install clean-venv

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	# basicsr is an sdist that needs torch to build: build it against the torch above, not a downloaded one
	$(PY) -m pip install --no-build-isolation basicsr==1.4.2
	$(PY) -m pip install --no-build-isolation -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m mclir_basicsr.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
