#!/bin/sh
# Install Debian's chromium (for the test that renders report.html in a real headless browser)
# when apt-get exists and no Chromium is installed. CI calls this; it fails loudly there if it cannot.
for b in chromium chromium-headless-shell google-chrome; do command -v "$b" >/dev/null 2>&1 && exit 0; done
command -v apt-get >/dev/null 2>&1 || { echo "error: no chromium and no apt-get to install it" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
echo "installing chromium (Debian package) ..."
$SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
