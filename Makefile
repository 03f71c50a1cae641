# One Makefile for every task on a Debian or Ubuntu machine (run as root, or
# with sudo available). `make run` and `make test` do all their own set-up.

PYTHON ?= /usr/bin/python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HTTP_PORT ?= 8080
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the appliance, its build and its tests need.
APT_PACKAGES := python3 python3-venv python3-dev gcc libasound2-dev alsa-utils \
	libsystemd-dev pkg-config chromium ffmpeg gstreamer1.0-tools \
	gstreamer1.0-plugins-good iproute2 systemd bubblewrap \
	avahi-daemon avahi-utils dbus-daemon vlc-bin vlc-plugin-base \
	device-tree-compiler fdisk dosfstools mtools valgrind
# Node.js comes from Debian only when the machine has none.
NODE_PACKAGES := nodejs npm

.PHONY: run test check bench deps lock frontend clean
.DEFAULT_GOAL := help
.PHONY: help

help:
	@echo "make run     set everything up and start the appliance (simulator when no microphone)"
	@echo "make test    set everything up and run the whole test suite"
	@echo "make check   ruff, ruff format --check and mypy --strict"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"
	@echo "make image   build the SD-card image (image/out/*.img.xz; docs/image.md)"
	@echo "make image-test  build it and boot it in QEMU (long, not in CI)"

.apt-stamp:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing $(NODE_PACKAGES)"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@touch $@

deps: $(STAMP)

$(STAMP): .apt-stamp requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

frontend: $(STAMP)
	$(MAKE) -C appliance/web/frontend

run: deps frontend
	$(BIN)/appliance serve --source auto --http-port $(HTTP_PORT)

# The checks run first: CI runs `make test`, so lint and types are part of it.
# TEST_WORKERS pytest-xdist workers share the test modules out (docs/testing.md);
# each module runs whole on one worker, in order. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: deps frontend check
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

check: deps frontend
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) -s -C appliance/web/frontend lint

bench: deps frontend
	$(BIN)/python -m bench

# Needs uv (pip install uv) and the -dev headers, since systemd-python ships
# only a source distribution.
lock:
	uv pip compile pyproject.toml --extra device --extra dev --extra play --extra science \
		--universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .apt-stamp appliance/web/static/dist

include mk/install.mk

include mk/image.mk
