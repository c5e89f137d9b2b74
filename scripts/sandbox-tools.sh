#!/usr/bin/env bash
# The sandboxes providers run renters' jobs in (provider.sandbox): bubblewrap (bwrap), gVisor (runsc), and
# slirp4netns and iproute2 for provider.job_network = "outbound". Installed from Debian/Ubuntu packages when
# missing (as root, or through sudo); otherwise this stops and says what to install. `make test` and `make demo`
# run it.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v runsc >/dev/null 2>&1 || [ -x /usr/sbin/runsc ] || need+=(runsc)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; }; then
  echo "error: renters' jobs run sandboxed, and this machine lacks: ${need[*]}" >&2
  echo "       install them (Debian/Ubuntu: sudo apt-get install ${need[*]}) and run make again" >&2
  exit 1
fi
echo "installing the job sandboxes: ${need[*]}"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
