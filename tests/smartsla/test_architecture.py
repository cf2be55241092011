"""The layout of docs/architecture.md, held against the code: the direction of imports, no cycles, leaves that
stay leaves, the public API of both packages, and the copies that were made one."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("smartsla", "oracle")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = modules()


def imports_of(name: str, *, top_level_only: bool = False) -> set[str]:
    """The project modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod`` when that is a module)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in MODULES and m != name}


def test_smartsla_never_imports_oracle():
    offenders = {m: sorted(i for i in imports_of(m) if i.startswith("oracle"))
                 for m in MODULES if m.startswith("smartsla")}
    assert not {m: i for m, i in offenders.items() if i}


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    # package faces (__init__) that only hand names on lazily import nothing at import time
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


# Leaves of the whole tree, and what each may import.
LEAVES = {
    "smartsla.constants": set(),
    "smartsla.encoding": {"smartsla.constants"},
    "smartsla.onchain.types": {"smartsla.constants", "smartsla.encoding"},
    "smartsla.measure.samples": set(),
    "smartsla.terms.errors": set(),
    "smartsla.evidence.format": {"smartsla.constants", "smartsla.encoding"},
}


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_stay_leaves(leaf):
    assert imports_of(leaf) <= LEAVES[leaf], imports_of(leaf) - LEAVES[leaf]


@pytest.mark.parametrize(("shared", "room"), [("smartsla.audit.findings", "smartsla.audit"),
                                              ("smartsla.evidence.format", "smartsla.evidence"),
                                              ("smartsla.terms.errors", "smartsla.terms"),
                                              ("oracle.store.schema", "oracle.store")])
def test_what_a_room_shares_imports_nothing_of_that_room(shared, room):
    """So that every module of the room can use it without a cycle (the audit <-> replay cycle was this)."""
    assert not [i for i in imports_of(shared) if i.startswith(room + ".")]


def test_only_the_command_line_imports_the_command_line():
    def is_cli(m: str) -> bool:
        return m.split(".")[1:2] == ["cli"]

    for m in MODULES:
        if not is_cli(m):
            assert not [i for i in imports_of(m) if is_cli(i)], m


def test_the_dev_network_is_not_part_of_the_oracle():
    """oracle/devnet serves the demo, tests and benchmarks; the oracle itself never needs it."""
    for m in MODULES:
        if m.startswith("oracle.devnet"):
            continue
        assert not [i for i in imports_of(m) if i.startswith("oracle.devnet")], m


# Deferred on purpose, each with a comment saying why (start-up time of every command).
DEFERRED = {("smartsla.chain.chain", "web3"), ("smartsla.chain.chain", "eth.vm.spoof")}


def test_imports_sit_at_the_top():
    late = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.ImportFrom) and (name, sub.module) not in DEFERRED:
                        late.append(f"{name}:{sub.lineno} from {sub.module}")
                    elif isinstance(sub, ast.Import):
                        late.append(f"{name}:{sub.lineno} import {sub.names[0].name}")
    assert not late


def test_the_on_chain_terms_are_read_by_name_outside_onchain():
    """No code outside onchain/ indexes the terms by position (``terms[8]``) or keeps the old tuple."""
    bad = re.compile(r"terms_tuple|terms_fields|_IDX_|(chain_terms|terms|onchain)\[\d+\]")
    hits = [f"{m}: {line.strip()}" for m, path in MODULES.items() if not m.startswith("smartsla.onchain")
            for line in path.read_text().splitlines() if bad.search(line)]
    assert not hits


@pytest.mark.parametrize(("pattern", "home"), [
    (r'0x\[0-9a-fA-F\]\{40\}', "smartsla/constants.py"),                # the address regex
    (r"\[a-z0-9\]\[a-z0-9_-\]", "smartsla/constants.py"),               # SERVICE_ID
    (r"^\s*HOUR_US\s*=", "smartsla/constants.py"),
    (r"^\s*_?NO_LATENCY\s*=", "smartsla/constants.py"),
    (r'"0x" \+ .*\.hex\(\)', "smartsla/encoding.py"),
    (r"\.ljust\(32, b", "smartsla/constants.py|smartsla/encoding.py"),    # service id -> bytes32
    (r"rstrip\(b\"\\\\0\"\)", "smartsla/encoding.py"),                    # bytes32 -> service id
    (r"def _?free_port\(", "smartsla/chain/anvil.py"),
    (r"fromisoformat\(", "smartsla/encoding.py"),
    (r'"EIP712Domain"', "smartsla/onchain/eip712.py"),
    (r"WHEN 'up' THEN|\(\"up\", \"down\", \"unknown\"\)", "smartsla/measure/samples.py"),
])
def test_one_home_for_each_shared_helper(pattern, home):
    homes = set(home.split("|"))
    hits = sorted({str(path.relative_to(ROOT)) for path in MODULES.values()
                   if re.search(pattern, path.read_text(), re.MULTILINE)} - homes)
    assert not hits, f"{pattern!r} is defined outside {home}: {hits}"


SMARTSLA_API = [
    "Agreement", "AuditReport", "Bundle", "Chain", "ChainError", "Contracts", "CreditRules", "EvidenceColumns",
    "EvidenceError", "Factory", "Finding", "History", "OnChainService", "OnChainTerms", "OnChainTier",
    "PeriodRecord", "PeriodResult", "PeriodState", "Reverted", "Sample", "SampleColumns", "SignedReport", "Status",
    "Terms", "TermsError", "TokenInfo", "build_bundle", "build_bundle_columns", "compile_contracts",
    "compute_periods", "connect", "load_bundle", "load_history", "load_terms", "period_credit_bps", "prove",
    "settle_period", "verify_bundle", "__version__",
]
ORACLE_API = [
    "ConfigError", "ImportFormatError", "OracleConfig", "OracleDaemon", "ProbeSpec", "Prober", "PrometheusError",
    "ReportIntent", "ReportServer", "Scheduler", "Store", "StoreError", "fetch_report", "load_config",
    "query_range_samples", "read_any", "read_incidents_csv", "read_samples_csv", "read_samples_jsonl", "sign_once",
    "__version__",
]


@pytest.mark.parametrize(("package", "api"), [("smartsla", SMARTSLA_API), ("oracle", ORACLE_API)])
def test_public_api_is_pinned_and_every_name_resolves(package, api):
    module = importlib.import_module(package)
    assert module.__all__ == api
    for name in api:
        value = getattr(module, name)
        if name != "__version__":
            assert getattr(value, "__module__", "").startswith(package), (name, value)
    # no exported name is also a submodule's: the import system would bind the module there instead
    submodules = {m.split(".")[1] for m in MODULES if m.startswith(package + ".")}
    assert not set(api) & submodules


def test_importing_a_package_loads_nothing_heavy():
    code = "import sys, smartsla, oracle; print(sorted(m for m in ('web3', 'numpy', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
