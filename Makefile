# cloudlet: `make run` starts it, `make test` tests it. Both install first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= /usr/bin/python3
# Debian packages cloudlet needs on the machine (checked one by one; apt only runs for missing ones)
APT_PACKAGES := python3 python3-venv python3-dev ca-certificates openssl sqlite3 iproute2 procps \
  runc containernetworking-plugins iptables nftables busybox-static docker-registry conmon curl
RUN_ARGS ?=

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

run: install
	$(VENV)/bin/cloudlet up $(RUN_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench

test: install lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: install
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) build src/*.egg-info
