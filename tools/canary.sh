#!/usr/bin/env bash
# Canary: run the whole test suite against the newest releases of the libraries the course
# teaches (trl, transformers, datasets, peft, accelerate), everything else as pinned, in a
# throw-away virtual environment. Usage: tools/canary.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
LATEST="trl transformers datasets peft accelerate"
venv="$(mktemp -d)/venv"
python -m venv "$venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
pinned_rest=$(mktemp)
grep -vE "^($(echo $LATEST | tr ' ' '|'))==" requirements.txt > "$pinned_rest"
"$venv/bin/python" -m pip install -q -r "$pinned_rest" -e .
"$venv/bin/python" -m pip install -q --upgrade $LATEST
versions=$("$venv/bin/python" -c "
import importlib.metadata as m
print(' '.join(f'{n}=={m.version(n)}' for n in 'torch $LATEST'.split()))")
echo "canary versions: $versions"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "### Canary ran with: \`$versions\`" >> "$GITHUB_STEP_SUMMARY"
fi
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
