// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A contract party whose receive() needs about 22,000 gas (its first write to a fresh slot): it
/// accepts a push that really gets the agreement's 30,000-gas stipend, and fails with less.
contract GasHungryReceiver {
    uint256 public payments;

    receive() external payable {
        payments += 1;
    }
}
