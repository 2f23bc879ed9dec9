#!/bin/sh
# Fetch R's survival package (its data sets, flchain among them, in data/Rdata.rdx + Rdata.rdb) from
# Debian's r-cran-survival into the safecompress cache, where the `flchain` dataset looks for it.
# No R needed; needs apt-get. Idempotent: does nothing when the files are already there.
set -e
CACHE="${SAFECOMPRESS_CACHE:-$HOME/.cache/safecompress}/flchain"
DATA="$CACHE/usr/lib/R/library/survival/data"
if [ -f "$DATA/Rdata.rdx" ] && [ -f "$DATA/Rdata.rdb" ]; then echo "survival data (flchain) already in $DATA"; exit 0; fi
command -v apt-get >/dev/null 2>&1 || { echo "error: needs apt-get (Debian/Ubuntu); or pass --data-dir to a folder holding Rdata.rdx and Rdata.rdb of R's survival package" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
apt-get download r-cran-survival >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download r-cran-survival; }
dpkg-deb -x r-cran-survival_*.deb "$TMP/pkg"
# keep only the data folder and the licence notes (the package also holds compiled code and help pages),
# copied under a temporary name, then renamed: an interrupted fetch never leaves a half file in place
mkdir -p "$DATA" "$CACHE/usr/share/doc"
for f in Rdata.rdb Rdata.rdx; do
  cp "$TMP/pkg/usr/lib/R/library/survival/data/$f" "$DATA/$f.part" && mv "$DATA/$f.part" "$DATA/$f"
done
cp "$TMP/pkg/usr/lib/R/library/survival/DESCRIPTION" "$CACHE/usr/lib/R/library/survival/"
cp -r "$TMP/pkg/usr/share/doc/r-cran-survival" "$CACHE/usr/share/doc/" 2>/dev/null || true
echo "survival data (flchain) in $DATA"
