#!/usr/bin/env bash
# Installs everything the test suite needs: the package with its test and training extras
# (torch==2.13.0, CPU build) and Debian's Chromium for the HTML report test.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test,train]"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; the HTML report browser test will be skipped" >&2
  else
    echo "warning: chromium not found and cannot apt-get install it; the browser test will be skipped" >&2
  fi
fi
