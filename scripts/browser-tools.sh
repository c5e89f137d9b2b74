#!/usr/bin/env bash
# The browser the dApp's tests (tests/web/, Playwright) drive: Debian's chromium package. Playwright is pointed
# at it (/usr/bin/chromium) and never downloads a browser of its own (`playwright install` is not used), so
# nothing is fetched at test time. Installed from the Debian/Ubuntu package when missing (as root, or through
# sudo); otherwise this stops and says what to install. `make test` runs it.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; }; then
  echo "error: the dApp's browser tests run in Chromium, and this machine lacks: ${need[*]}" >&2
  echo "       install it (Debian: sudo apt-get install ${need[*]}) and run make again" >&2
  exit 1
fi
echo "installing the browser for the dApp's tests: ${need[*]}"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
