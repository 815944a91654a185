#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is at /usr/bin/chromium (the dashboard's browser tests
# drive it with Playwright; Playwright's own browser download is never used).
# Installs it with apt-get when it is missing and we are root; otherwise says why and exits 0, so the
# browser tests skip with that reason instead of failing the whole run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: /usr/bin/chromium is missing and apt-get cannot run here (not root or no apt);" \
        "the dashboard browser tests will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }; then
    echo "ensure-chromium: apt-get could not install chromium; the dashboard browser tests will be skipped" >&2
    exit 0
fi
/usr/bin/chromium --version
