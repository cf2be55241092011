"""Write the standard-JSON input slither analyses: the production contracts with their imports inlined,
compiled with brownie-config.yaml's settings. --stub-guard swaps OpenZeppelin's ReentrancyGuardTransient for
an analysis-only stand-in, because slither 0.11.6 cannot build IR for it (see docs/slither.md)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartsla.chain.build import collect_sources, standard_input
from smartsla.chain.config import compiler_settings, project_root

GUARD = "node_modules/@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol"
STUB = """// SPDX-License-Identifier: MIT
// Analysis-only stand-in: the same nonReentrant modifier and error, on a storage flag.
pragma solidity ^0.8.24;
abstract contract ReentrancyGuardTransient {
    error ReentrancyGuardReentrantCall();
    bool private _entered;
    modifier nonReentrant() {
        if (_entered) revert ReentrancyGuardReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }
    function _reentrancyGuardEntered() internal view returns (bool) {
        return _entered;
    }
}
"""


def main() -> None:
    settings = compiler_settings()
    sources = {unit: text for unit, text in collect_sources(project_root(), settings["remappings"]).items()
               if not unit.startswith(("contracts/test/", "contracts/dev/"))}
    if "--stub-guard" in sys.argv:
        sources[GUARD] = STUB
    data = standard_input(sources, settings)
    data["settings"]["outputSelection"] = {
        "*": {"*": ["abi", "metadata", "devdoc", "userdoc", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}
    }
    print(json.dumps(data))


if __name__ == "__main__":
    main()
