#!/bin/sh
# Fetch the kernlab census table (income.rda) from Debian's r-cran-kernlab package into the
# safecompress cache, where the `income` dataset looks for it. No R needed; needs apt-get.
set -e
CACHE="${SAFECOMPRESS_CACHE:-$HOME/.cache/safecompress}/income"
if [ -f "$CACHE/usr/lib/R/site-library/kernlab/data/income.rda" ]; then echo "income.rda already in $CACHE"; exit 0; fi
command -v apt-get >/dev/null 2>&1 || { echo "error: needs apt-get (Debian/Ubuntu); or pass --data-dir to a folder holding income.rda" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
apt-get download r-cran-kernlab >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download r-cran-kernlab; }
mkdir -p "$CACHE"
dpkg-deb -x r-cran-kernlab_*.deb "$CACHE"
echo "income.rda in $CACHE/usr/lib/R/site-library/kernlab/data"
