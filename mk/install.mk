# `sudo make install` / `sudo make uninstall`: the appliance as a system
# service on an existing Debian or Raspberry Pi OS machine.
# Layout and units: docs/systemd.md. Included from the top Makefile.
#
#   sudo make install                   files, user, venv, units; enable and start
#   sudo make uninstall                 stop, disable, remove code and units (data kept)
#   sudo make uninstall PURGE=1         also /var/lib/micarray and the two users
#   make install DESTDIR=/path/rootfs   stage files and units into a root file system
#                                       (an image); no apt, no venv, no start: run
#                                       `make install-venv` inside that system later

MICARRAY_PREFIX ?= /opt/micarray
SYSTEMD_UNITDIR ?= /usr/local/lib/systemd/system
SYSUSERS_DIR    ?= /usr/local/lib/sysusers.d
POLKIT_RULES_DIR ?= /etc/polkit-1/rules.d
INSTALL_PYTHON  ?= /usr/bin/python3
# Set to 1 to stage without the browser bundle (tests; the web UI then shows nothing).
SKIP_FRONTEND   ?=
PURGE           ?=

# What a device needs at run time and to build pyalsaaudio and systemd-python.
INSTALL_APT_PACKAGES := python3 python3-venv python3-dev gcc pkg-config libasound2-dev \
	libsystemd-dev alsa-utils polkitd dbus
INSTALL_SOURCES := appliance browserinterface rtai pyproject.toml requirements.lock \
	README.md docs systemd
INSTALL_UNITS   := micarray.service micarray-run@.service micarray-runs.slice
MICARRAY_VENV   := $(MICARRAY_PREFIX)/.venv

.PHONY: install uninstall install-files install-units install-apt install-venv install-activate

install:
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" = 0 ] || \
		{ echo "make install changes the system: run it as root (sudo make install)"; exit 1; }
	$(MAKE) --no-print-directory install-files install-units
	@if [ -z "$(DESTDIR)" ]; then \
		$(MAKE) --no-print-directory install-apt install-venv install-activate; \
	else \
		echo "staged into $(DESTDIR); inside that system run: make -C $(MICARRAY_PREFIX) -f mk/install.mk install-venv install-activate"; \
	fi

install-files:
	@if [ -z "$(SKIP_FRONTEND)" ] && [ ! -f appliance/web/static/dist/main.js ]; then \
		command -v npm >/dev/null || { echo "the browser bundle is not built and npm is missing: apt-get install nodejs npm (or SKIP_FRONTEND=1)"; exit 1; }; \
		$(MAKE) -C appliance/web/frontend; \
	fi
	install -d -m 755 $(DESTDIR)$(MICARRAY_PREFIX)
	cd $(DESTDIR)$(MICARRAY_PREFIX) && rm -rf $(INSTALL_SOURCES) mk
	tar -cf - --exclude=__pycache__ --exclude=node_modules --exclude='*.pyc' \
		$(INSTALL_SOURCES) mk | tar -C $(DESTDIR)$(MICARRAY_PREFIX) -xf - --no-same-owner
	chmod -R u=rwX,go=rX $(DESTDIR)$(MICARRAY_PREFIX)

# mkdir, not install -d, for polkit's directory: it keeps its own owner and mode.
install-units:
	install -d -m 755 $(DESTDIR)$(SYSTEMD_UNITDIR) $(DESTDIR)$(SYSUSERS_DIR)
	mkdir -p $(DESTDIR)$(POLKIT_RULES_DIR)
	for unit in $(INSTALL_UNITS); do \
		sed 's|/opt/micarray|$(MICARRAY_PREFIX)|g' systemd/$$unit > $(DESTDIR)$(SYSTEMD_UNITDIR)/$$unit; \
		chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$unit; \
	done
	install -m 644 systemd/sysusers.d/micarray.conf $(DESTDIR)$(SYSUSERS_DIR)/micarray.conf
	install -m 644 systemd/polkit/50-micarray.rules $(DESTDIR)$(POLKIT_RULES_DIR)/50-micarray.rules
	@if [ -n "$(DESTDIR)" ]; then \
		systemctl --root=$(DESTDIR) enable micarray.service >/dev/null 2>&1 && echo "enabled micarray.service in $(DESTDIR)" || \
			echo "note: could not enable micarray.service in $(DESTDIR) (no systemd there yet)"; \
	fi

install-apt:
	@command -v apt-get >/dev/null || { echo "no apt-get: install by hand: $(INSTALL_APT_PACKAGES)"; exit 0; }; \
	missing=""; for p in $(INSTALL_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The locked versions, but only what the device needs (not the test tools).
install-venv:
	test -x $(MICARRAY_VENV)/bin/python || $(INSTALL_PYTHON) -m venv $(MICARRAY_VENV)
	$(MICARRAY_VENV)/bin/pip install -q --upgrade pip
	cd $(MICARRAY_PREFIX) && $(MICARRAY_VENV)/bin/pip install -q -c requirements.lock ".[device,science]"
	$(MICARRAY_VENV)/bin/python -c "import appliance, alsaaudio, systemd.daemon"

install-activate:
	systemd-sysusers $(SYSUSERS_DIR)/micarray.conf
	systemctl daemon-reload
	systemctl enable micarray.service
	systemctl restart micarray.service
	@echo "micarray runs: http://$$(hostname).local/  (logs: journalctl -u micarray -f)"

uninstall:
	@[ "$$(id -u)" = 0 ] || { echo "make uninstall changes the system: run it as root (sudo make uninstall)"; exit 1; }
	@case "$(MICARRAY_PREFIX)" in /opt/*|/usr/local/*) ;; *) echo "MICARRAY_PREFIX=$(MICARRAY_PREFIX) is not under /opt or /usr/local; refusing to remove it"; exit 1;; esac
	-systemctl disable --now micarray.service
	-systemctl stop 'micarray-run@*.service' micarray-runs.slice
	-systemctl reset-failed 'micarray-run@*.service' micarray.service
	for unit in $(INSTALL_UNITS); do rm -f $(SYSTEMD_UNITDIR)/$$unit; done
	rm -f $(SYSUSERS_DIR)/micarray.conf $(POLKIT_RULES_DIR)/50-micarray.rules
	rm -rf $(MICARRAY_PREFIX)
	-systemctl daemon-reload
	@if [ -n "$(PURGE)" ]; then \
		rm -rf /var/lib/micarray; \
		userdel micarray-run 2>/dev/null; userdel micarray 2>/dev/null; \
		groupdel micarray-run 2>/dev/null; groupdel micarray 2>/dev/null; \
		echo "removed the data in /var/lib/micarray and the users micarray, micarray-run"; \
	else \
		echo "kept /var/lib/micarray (scripts, recordings, tokens); make uninstall PURGE=1 removes it"; \
	fi
