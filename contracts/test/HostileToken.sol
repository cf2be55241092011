// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Test-only ERC-20 that attacks whoever calls `transfer` (the agreement paying out).
/// @notice When armed, the next `transfer` first calls `hookTarget` with `hookData`. The outcome of that
/// call is recorded so a test can read the revert data; with `bubble` set, a failed callback makes the
/// transfer itself revert with the callback's revert data. `blocked` recipients have transfers refused,
/// which is how tests make the agreement defer a payment to `owed`; `burning` recipients have every transfer burn
/// all the gas it is given (a hostile token hook), to show what such a recipient costs the settler.
contract HostileToken is ERC20 {
    error Blocked(address to);

    address public hookTarget;
    bool public bubble;
    bytes public hookData;
    uint256 public hookCalls;
    bool public lastHookSucceeded;
    bytes public lastHookResult;
    mapping(address => bool) public blocked;
    mapping(address => bool) public burning;

    constructor() ERC20("Hostile USD", "hUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target, bytes calldata data, bool bubble_) external {
        hookTarget = target;
        hookData = data;
        bubble = bubble_;
    }

    function setBlocked(address account, bool value) external {
        blocked[account] = value;
    }

    function setBurning(address account, bool value) external {
        burning[account] = value;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (blocked[to]) revert Blocked(to);
        if (burning[to]) {
            assembly {
                invalid()
            }
        }
        address target = hookTarget;
        if (target != address(0)) {
            // One shot, so the callback cannot recurse through a transfer of its own.
            hookTarget = address(0);
            (bool ok, bytes memory result) = target.call(hookData);
            ++hookCalls;
            lastHookSucceeded = ok;
            lastHookResult = result;
            if (!ok && bubble) {
                assembly {
                    revert(add(result, 32), mload(result))
                }
            }
        }
        return super.transfer(to, value);
    }
}
