"""Compile the contracts with the pinned compiler, reproducibly, into ``build/``.

The compiler is called through py-solc-x's ``compile_standard``. By default the binary is our adapter in
front of the npm ``solc`` (solc-js), which works offline; set ``SMARTSLA_SOLC`` to a native solc of the same
version to use that instead. Sources are inlined into the standard-JSON input, resolved here exactly as solc
resolves them, so both compilers see identical input and produce identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx
from eth_utils import keccak

from smartsla.chain.config import compiler_settings, is_checkout, project_root
from smartsla.encoding import to_hex

ADAPTER = Path(__file__).with_name("solcjs-adapter.cjs")
# The build of what the tools deploy and check, shipped in the package: an installed smart-sla (no checkout, no
# Node.js, no solc) creates, audits and simulates with these. A checkout's build refreshes them, and a test holds
# them equal to a fresh build.
SHIPPED_DIR = Path(__file__).with_name("artifacts")
SHIPPED = ("SlaAgreement", "SlaFactory", "TestUSD")
IMPORT_RE = re.compile(r'^\s*import\s+(?:[^"\';]*?\bfrom\s+)?["\']([^"\']+)["\']', re.MULTILINE)
ARTIFACT_FORMAT = 2  # 2: with storageLayout


class BuildError(Exception):
    """The contracts could not be compiled; the message says why and what to do."""


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    # solc's storageLayout: {"storage": [{label, slot, offset, type}...], "types": {...}}; empty for interfaces
    storage_layout: dict[str, Any] = field(default_factory=dict, compare=False)


def solc_binary() -> str:
    return os.environ.get("SMARTSLA_SOLC") or str(ADAPTER)


def _remap(unit: str, remappings: list[str]) -> str:
    best = ("", "")
    for entry in remappings:
        prefix, _, target = entry.partition("=")
        if unit.startswith(prefix) and len(prefix) > len(best[0]):
            best = (prefix, target)
    return best[1] + unit[len(best[0]):] if best[0] else unit


def _resolve(importer: str, path: str, remappings: list[str]) -> str:
    if path.startswith("./") or path.startswith("../"):
        parts = importer.split("/")[:-1]
        for piece in path.split("/"):
            if piece == "..":
                if not parts:
                    raise BuildError(f"{importer}: import {path!r} climbs above the project root")
                parts.pop()
            elif piece not in (".", ""):
                parts.append(piece)
        return "/".join(parts)
    return _remap(path, remappings)


def collect_sources(root: Path, remappings: list[str]) -> dict[str, str]:
    """Every contract under contracts/ and everything it imports, keyed by solc source unit name."""
    pending = sorted(p.relative_to(root).as_posix() for p in (root / "contracts").rglob("*.sol"))
    if not pending:
        raise BuildError(f"no .sol files under {root / 'contracts'}")
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        file = root / unit
        try:
            text = file.read_text()
        except FileNotFoundError:
            hint = " (run `npm ci` to install the npm packages)" if unit.startswith("node_modules/") else ""
            raise BuildError(f"cannot find {unit}{hint}") from None
        sources[unit] = text
        pending.extend(_resolve(unit, imp, remappings) for imp in IMPORT_RE.findall(text))
    return dict(sorted(sources.items()))


def standard_input(sources: dict[str, str], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            "evmVersion": settings["evm_version"],
            "optimizer": settings["optimizer"],
            "viaIR": settings["via_ir"],
            "remappings": settings["remappings"],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                            "storageLayout"]}},
        },
    }


def build_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "build"


def compile_contracts(force: bool = False, quiet: bool = True) -> dict[str, Artifact]:
    """Compile if any source or setting changed since the last build; return every contract's artifact.

    Without a checkout (an installed package) there is nothing to compile: the shipped build is returned, and
    ``force`` is an error that says where the sources are."""
    root = project_root()
    if not is_checkout(root):
        if force:
            raise BuildError("building compiles the contracts' sources, which only a checkout of smart-sla has: "
                             "clone the repository and run `make build` there (the installed package ships the "
                             "build of SlaAgreement, SlaFactory and TestUSD)")
        return shipped_artifacts()
    settings = compiler_settings()
    sources = collect_sources(root, settings["remappings"])
    input_json = standard_input(sources, settings)
    input_hash = hashlib.sha256(json.dumps(input_json, sort_keys=True).encode()).hexdigest()
    out_dir = build_dir(root) / "contracts"
    stamp = build_dir(root) / "build-info.json"
    if not force and stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("input_sha256") == input_hash and info.get("format") == ARTIFACT_FORMAT:
            return load_artifacts()

    binary = solc_binary()
    try:
        version = str(solcx.wrapper.get_solc_version(binary, with_commit_hash=True))
    except (OSError, solcx.exceptions.SolcError) as exc:
        raise BuildError(f"cannot run the compiler {binary}: {exc}. Run `npm ci`, or set SMARTSLA_SOLC") from exc
    if not version.startswith(settings["version"] + "+") and version != settings["version"]:
        raise BuildError(
            f"compiler {binary} is solc {version}, but brownie-config.yaml pins {settings['version']}; "
            "use the pinned npm solc (npm ci) or a native solc of that version"
        )
    if not quiet:
        print(f"compiling {len(sources)} sources with solc {version} (evm {settings['evm_version']})")
    try:
        output = solcx.compile_standard(input_json, solc_binary=binary)
    except solcx.exceptions.SolcError as exc:
        raise BuildError(f"compilation failed:\n{exc.message if hasattr(exc, 'message') else exc}") from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    source_hashes = {unit: to_hex(keccak(text=text)) for unit, text in sources.items()}
    written = set()
    for unit, contracts in output.get("contracts", {}).items():
        if not unit.startswith("contracts/"):
            continue
        for name, data in contracts.items():
            artifact = {
                "contractName": name,
                "sourcePath": unit,
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "storageLayout": data.get("storageLayout") or {},
                "compiler": {"version": version, "settings": input_json["settings"]},
                "sourceHashes": source_hashes,
            }
            (out_dir / f"{name}.json").write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
            written.add(f"{name}.json")
    for stale in out_dir.glob("*.json"):
        if stale.name not in written:
            stale.unlink()
    if root == SHIPPED_DIR.resolve().parents[2]:  # this package's own checkout, not another tree built with SMARTSLA_ROOT
        _refresh_shipped(out_dir)
    stamp.write_text(json.dumps({"format": ARTIFACT_FORMAT, "input_sha256": input_hash, "solc": version}) + "\n")
    return load_artifacts()


def _refresh_shipped(out_dir: Path) -> None:
    SHIPPED_DIR.mkdir(exist_ok=True)
    for name in SHIPPED:
        data = json.loads((out_dir / f"{name}.json").read_text())
        data.pop("sourceHashes", None)  # the sources are not shipped
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        target = SHIPPED_DIR / f"{name}.json"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def shipped_artifacts() -> dict[str, Artifact]:
    if not all((SHIPPED_DIR / f"{name}.json").is_file() for name in SHIPPED):
        raise BuildError(f"this installation lacks the contracts' build ({SHIPPED_DIR}): reinstall smart-sla")
    return load_artifacts(SHIPPED_DIR)


def load_artifacts(out_dir: Path | None = None) -> dict[str, Artifact]:
    out_dir = out_dir or build_dir() / "contracts"
    artifacts = {}
    for file in sorted(out_dir.glob("*.json")):
        data = json.loads(file.read_text())
        artifacts[data["contractName"]] = Artifact(
            name=data["contractName"],
            source=data["sourcePath"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            storage_layout=data.get("storageLayout") or {},
        )
    return artifacts


def main() -> None:
    try:
        artifacts = compile_contracts(force="--force" in sys.argv, quiet=False)
    except BuildError as exc:
        sys.exit(f"error: {exc}")
    for name, art in artifacts.items():
        print(f"{name:28} {len(art.deployed_bytecode) // 2 - 1:6} bytes deployed   ({art.source})")


if __name__ == "__main__":
    main()
