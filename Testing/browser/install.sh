#!/usr/bin/env bash
# Installs a real headless browser (Debian's chromium) for the status-page test (Testing/test_server_page.py).
# CI runs it as root; on a machine without it that test says so and is skipped.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "browser/install.sh: run as root (it installs Debian's chromium with apt-get)" >&2
  exit 1
fi
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
