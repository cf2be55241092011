// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISlaAgreement} from "../interfaces/ISlaAgreement.sol";

/// @notice A contract party whose receive() needs about 22,000 gas (its first write to a fresh slot): it
/// accepts a push that really gets the agreement's 30,000-gas stipend, and fails with less.
contract GasHungryReceiver {
    uint256 public payments;

    /// @dev A party consents to the terms it is named in; this is the one call the contract makes.
    function consentTo(ISlaAgreement agreement, bytes calldata encodedTerms) external {
        agreement.accept(encodedTerms);
    }

    receive() external payable {
        payments += 1;
    }
}
