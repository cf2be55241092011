// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Test-only: a contract customer that can be switched to refuse ETH.
/// @notice Drives the ETH deferred-payment (`owed`) path; it cannot sign EIP-712 consents, so it also
/// shows that a contract party cannot agree to an early termination.
contract RefusingWallet {
    address public immutable owner;
    bool public refusing;

    error NotOwner(address caller);
    error Refused();

    constructor() payable {
        owner = msg.sender;
    }

    function setRefusing(bool refusing_) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        refusing = refusing_;
    }

    /// @dev Bubbles the target's revert data so the tests see the agreement's custom error.
    function execute(address target, uint256 value, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        if (refusing) revert Refused();
    }
}
