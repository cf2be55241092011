#!/usr/bin/env bash
# `make brownie-check`: brownie compiles the contracts through the npm solc-js and deploys the factory and an
# example agreement with scripts/deploy.py on an anvil started here, on a free port, and stopped on any exit.
# brownie's data folder (~/.brownie, from HOME) and py-solc-x's compiler folder (SOLCX_BINARY_PATH) live in a
# temporary folder, so nothing in the user's home is read or written and nothing is downloaded.
# See docs/brownie.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${BROWNIE_VENV:-.venv-brownie}
brownie=$root/$venv/bin/brownie
py=$root/$venv/bin/python

# the pinned solc version and the development network's anvil settings, from brownie-config.yaml
read -r solc_version anvil hardfork chain_id < <("$py" - <<'EOF'
import yaml
cfg = yaml.safe_load(open("brownie-config.yaml"))
dev = cfg["networks"]["development"]
print(cfg["compiler"]["solc"]["version"], dev["binary"], dev.get("hardfork", "cancun"), dev.get("chain_id", 31337))
EOF
)

work=$(mktemp -d "${TMPDIR:-/tmp}/smartsla-brownie.XXXXXX")
anvil_pid=
cleanup() {
  if [ -n "$anvil_pid" ]; then
    kill "$anvil_pid" 2>/dev/null || true
    wait "$anvil_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$work/home" "$work/solcx"
# py-solc-x (and so brownie) runs $SOLCX_BINARY_PATH/solc-v<version> as that solc
ln -s "$root/scripts/brownie-solc.cjs" "$work/solcx/solc-v$solc_version"
export HOME=$work/home SOLCX_BINARY_PATH=$work/solcx

echo "== brownie compile --all (solc-js $solc_version through scripts/brownie-solc.cjs)"
"$brownie" compile --all

echo "== the same bytecode as smartsla.chain.build"
"$py" - <<'EOF'
import json, pathlib, sys
ours = pathlib.Path("build/contracts")
theirs = pathlib.Path("build/brownie/contracts")
names = sorted(p.stem for p in ours.glob("*.json"))
if not names:
    sys.exit("no smartsla artifacts in build/contracts: run `make build` first")
for name in names:
    a = json.loads((ours / f"{name}.json").read_text())
    b = json.loads((theirs / f"{name}.json").read_text())
    for key in ("bytecode", "deployedBytecode"):
        if a[key].removeprefix("0x") != b[key].removeprefix("0x"):
            sys.exit(f"{name}: brownie's {key} differs from smartsla.chain.build's")
print(f"{len(names)} contracts: bytecode and deployed bytecode identical")
EOF

echo "== anvil ($anvil, $hardfork, chain $chain_id) on a free port"
for attempt in 1 2 3 4 5; do
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # as `smartsla node start` runs it: two unlocked accounts, the default base fee
  "$root/$anvil" --host 127.0.0.1 --port "$port" --hardfork "$hardfork" --chain-id "$chain_id" \
    --accounts 2 --silent &
  anvil_pid=$!
  for _ in $(seq 100); do
    if ! kill -0 "$anvil_pid" 2>/dev/null; then break; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break 2; fi
    sleep 0.05
  done
  kill "$anvil_pid" 2>/dev/null || true
  wait "$anvil_pid" 2>/dev/null || true
  anvil_pid=
done
if [ -z "$anvil_pid" ]; then echo "anvil did not start" >&2; exit 1; fi

# brownie attaches to a node already listening where its `development` network points
"$brownie" networks modify development port="$port" >/dev/null

echo "== brownie run scripts/deploy.py --network development (127.0.0.1:$port)"
"$brownie" run scripts/deploy.py --network development | tee "$work/brownie.out"

echo "== the same script through the library (plain Python, embedded chain): the same addresses and gas"
"$root/.venv/bin/python" scripts/deploy.py --network embedded | tee "$work/library.out"
diff <(grep -E '^(factory|agreement) ' "$work/brownie.out") "$work/library.out"
echo "brownie-check: passed"
