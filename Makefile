# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh Debian machine
# with only Python 3.11+: they create .venv themselves and, as root, install the Debian packages the tests
# and the demo need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBS := age ffmpeg chromium iproute2 time curl fonts-dejavu-core nftables dosfstools exfatprogs mtools fusefat exfat-fuse \
	rsyslog rsyslog-gnutls openssh-server sshfs swtpm swtpm-tools tpm2-tools

.PHONY: demo test bench docs venv debs npm screenshots clean

$(BIN)/kluis: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/kluis

# Debian packages for the real parts the tests use (age CLI, ffmpeg, Chromium, ip netns) and GNU time
# (peak memory of a child process in bench/), curl (the plain upload bench_sync compares with), fonts-dejavu-core
# (the Unicode font of the handover's transfer form PDF), dosfstools, exfatprogs, mtools, fusefat and exfat-fuse
# (FAT32 and exFAT camera images for the USB ingest tests, mounted in user space where the kernel lacks them),
# rsyslog and rsyslog-gnutls (the log collector the alert tests forward the audit log to, RFC 5425 over TLS),
# openssh-server and sshfs (the SFTP network backup target: a real sshd in tests/backup/test_backup_sftp.py),
# swtpm, swtpm-tools and tpm2-tools (a software TPM2 for the image's signing-key seal:
# tests/image/test_signing_key_tpm2.py).
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: missing Debian packages ($$missing); run 'sudo make debs' for the full suite"; fi; \
	fi

# axe-core, the accessibility checker tests/webui/test_walk.py puts into each page, at the version
# tests/a11y/package-lock.json pins (npm ci installs exactly that, or fails).
A11Y := tests/a11y
npm: $(A11Y)/node_modules/axe-core/axe.min.js

$(A11Y)/node_modules/axe-core/axe.min.js: $(A11Y)/package.json $(A11Y)/package-lock.json
	cd $(A11Y) && npm ci --no-audit --no-fund
	touch $@

demo: venv
	$(BIN)/kluis demo

# Lint and type check first: they take seconds, the suite takes minutes. The suite mostly waits (on real
# servers, cameras, browsers and disks), so it runs on TEST_WORKERS workers; the tests that share the LAN's
# mDNS run one after another on one of them (tests/conftest.py, SHARED_LAN: a scheduler of our own).
TEST_WORKERS ?= 4
test: venv debs npm
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS)

# The README's permission table and docs/cli-reference.md, from the commands (tests/test_docs.py fails when stale).
docs: venv
	$(BIN)/python docs/generate.py
	$(BIN)/python -m appliance.config_docs

# docs/ui/: a screenshot of every page at 1280 and 390 px, and their index (written by the walk, which runs last),
# from the first-boot wizard's test and the walk through every page per role.
screenshots: venv debs npm
	rm -f docs/ui/*.png
	KLUIS_UI_SHOTS=docs/ui $(BIN)/python -m pytest -q -p no:cacheprovider tests/setup/test_setup_browser.py \
	  tests/webui/test_walk.py

bench: venv debs
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info $(A11Y)/node_modules
