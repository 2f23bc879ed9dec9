#!/bin/sh
# Install Debian's dataset-fashion-mnist when apt-get exists and the files are missing.
# Never fails the set-up: without the package, fashion-mnist can still come from --data-dir or --download.
dir=/usr/share/datasets/fashion-mnist
[ -f "$dir/train-images-idx3-ubyte.gz" ] && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "note: no apt-get; fashion-mnist needs --data-dir or --download"; exit 0; }
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "note: not root; to get fashion-mnist run: sudo apt-get install dataset-fashion-mnist"; exit 0; fi
echo "installing dataset-fashion-mnist (Debian package) ..."
{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
  || echo "note: apt-get could not install dataset-fashion-mnist; use --data-dir or --download instead"
exit 0
