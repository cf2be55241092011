# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_VERSION := 26.3
PYTEST_ARGS ?=

.PHONY: setup build demo test test-embedded test-anvil soak bench clean

$(VENV)/.installed: pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(VENV)/bin/pip install --quiet -c requirements/lock.txt -e ".[test]"
	touch $@

# --ignore-scripts: anvil's postinstall would try to download; its binary already ships in the npm package.
node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# A Debian package the tests need, installed as root (or through sudo): $(call apt_install,PACKAGE)
define apt_install
	@if [ "$$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then \
	  echo "the tests need Debian's $(1) package: run 'apt-get install $(1)' as root"; exit 1; fi
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) \
	  apt-get install -y -qq --no-install-recommends $(1)
endef

# Debian's Prometheus, for the test of the Prometheus import source (the test starts it on 127.0.0.1 itself;
# the package's own service is not wanted).
/usr/bin/prometheus:
	$(call apt_install,prometheus)
	-@systemctl disable --now prometheus >/dev/null 2>&1 || true

# jq: the docs' command blocks use it the way their readers would (tests/docs runs them).
/usr/bin/jq:
	$(call apt_install,jq)

setup: $(VENV)/.installed node_modules/.installed

build: setup
	$(PY) -m smartsla.chain.build

# First the what-if table (embedded chain), then the live run: three oracle daemons measure a local service
# on anvil and the contract pays from their reports.
demo: build
	$(VENV)/bin/smartsla simulate examples/multi-service.yaml \
	  --period api=100%,db=99.95%,queue=100% \
	  --period api=99.95%,db=99.5%,queue=99.9% \
	  --period api=98.9%,db=97.0%,queue=94.0%
	$(PY) scripts/demo.py

test: build /usr/bin/prometheus /usr/bin/jq
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The fault suite's long variant (not in CI): 16 periods of kills -9 at random moments and in the sign/submit
# window, on anvil with three real daemons (tests/faults; about 7 minutes).
soak: build
	SMARTSLA_SOAK=1 $(PY) -m pytest tests/faults -q $(PYTEST_ARGS)

# gas, the period report, probes and settlement latency; each appends its table to docs/benchmarks.md
bench: build
	$(PY) -m benchmarks --write docs/benchmarks.md

clean:
	rm -rf build .pytest_cache .hypothesis

# slither pins its own web3/eth packages: it lives in its own environment, never in .venv.
SLITHER_VENV := .venv-slither
.PHONY: slither
slither: build
	test -x $(SLITHER_VENV)/bin/slither || { $(PYTHON) -m venv $(SLITHER_VENV) && \
	  $(SLITHER_VENV)/bin/pip install --quiet slither-analyzer==0.11.6; }
	$(PY) scripts/slither_input.py --stub-guard > build/slither-input.json
	$(SLITHER_VENV)/bin/slither build/slither-input.json --compile-force-framework solc-json \
	  --solc smartsla/chain/solcjs-adapter.cjs --filter-paths node_modules --fail-none

# brownie pins web3 7.16 and ~80 exact versions (smart-sla needs web3 8): it lives in its own environment with
# smart-sla installed --no-deps, from the `brownie` extra and requirements/brownie-lock.txt. brownie is built from
# its sdist as plain Python (BROWNIE_NOCOMPILE): the compiled wheel cannot read our brownie-config.yaml. See
# docs/brownie.md.
BROWNIE_VENV := .venv-brownie
.PHONY: brownie-check

$(BROWNIE_VENV)/.installed: pyproject.toml requirements/brownie-lock.txt
	test -x $(BROWNIE_VENV)/bin/python || $(PYTHON) -m venv $(BROWNIE_VENV)
	$(BROWNIE_VENV)/bin/pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(BROWNIE_VENV)/bin/pip install --quiet -c requirements/brownie-lock.txt setuptools wheel
	$(BROWNIE_VENV)/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["brownie"], sep="\n")' > $(BROWNIE_VENV)/brownie-extra.txt
	BROWNIE_NOCOMPILE=1 $(BROWNIE_VENV)/bin/pip install --quiet --no-build-isolation --no-binary eth-brownie \
	  -c requirements/brownie-lock.txt -r $(BROWNIE_VENV)/brownie-extra.txt
	$(BROWNIE_VENV)/bin/pip install --quiet --no-build-isolation --no-deps -e .
	touch $@

# brownie compile (npm solc-js via scripts/brownie-solc.cjs) and brownie run scripts/deploy.py on a fresh anvil
brownie-check: build $(BROWNIE_VENV)/.installed
	bash scripts/brownie-check.sh
