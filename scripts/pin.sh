#!/bin/bash
# Behaviour pin for refactors: run two audited ci jobs with the code of two source trees and compare them.
#   scripts/pin.sh OLD_SRC NEW_SRC [WORK]      e.g. scripts/pin.sh ../main/src src
# OLD_SRC/NEW_SRC are folders holding the `safecompress` package (a checkout's src/). Prints PINNED when
# rounds.jsonl, report.json (every section but timings, code and manifest), model, split, scores and
# canaries are identical; CHANGED (and what) otherwise. Needs the project's .venv (or PY=/path/to/python).
# A third job pins the attacks beyond membership and the in-loop simulators: SafeCompress on a small image set
# with a sensitive attribute, simulating [nn, whitebox, grad_norm, calibrated, attribute, inversion], audited by
# white-box, label-only, attribute and inversion attacks.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); work=${3:-$(mktemp -d)}; mkdir -p "$work"
here=$(cd "$(dirname "$0")/.." && pwd)
py="${PY:-$here/.venv/bin/python}"
args=(--preset ci --set data.name=digits --set model.name=mlp --set train.augment=false --set train.lr=0.005
  --set data.split.train=0.5 --set data.split.population=0.05 --set train.epochs=4 --set sparse.update_every=10
  --set sparse.density=0.2 --set audit.enabled=true --set 'audit.attacks=[loss,nn,lira]' --set audit.refs=2
  --set audit.bootstrap=20)
attr=(--preset ci --set data.name=cifar10-synth-attr --set data.max_samples=1200 --set data.synth_samples=1200
  --set train.epochs=3 --set method.name=safecompress --set sparse.update_every=4 --set safecompress.attacker_epochs=5
  --set 'safecompress.simulate=[nn,whitebox,grad_norm,calibrated,attribute,inversion]' --set audit.enabled=true
  --set 'audit.attacks=[loss,label_only,grad_norm,whitebox,calibrated,attribute,inversion]' --set audit.refs=2
  --set audit.bootstrap=20 --set 'audit.attack_params={inversion: {classes: 4, steps: 30}, whitebox: {epochs: 5}}')
for side in old new; do
  src=$old; [ "$side" = new ] && src=$new
  rm -rf "$work/$side"
  PYTHONPATH="$src" OMP_NUM_THREADS=1 "$py" -m safecompress run "${args[@]}" --set method.name=safecompress \
    -o "$work/$side/sc" > "$work/$side.sc.log" 2>&1
  PYTHONPATH="$src" OMP_NUM_THREADS=1 "$py" -m safecompress run "${args[@]}" --set method.name=rigl \
    --set defence.name=hamp --set quantize=int8 --set audit.canaries=40 -o "$work/$side/hamp" > "$work/$side.hamp.log" 2>&1
  PYTHONPATH="$src" OMP_NUM_THREADS=1 "$py" -m safecompress run "${attr[@]}" -o "$work/$side/attr" > "$work/$side.attr.log" 2>&1
done
"$py" "$here/scripts/pin_compare.py" "$work/old" "$work/new"
