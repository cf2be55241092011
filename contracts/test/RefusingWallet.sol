// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title Test-only: a contract wallet party that can be switched to refuse ETH.
/// @notice Drives the ETH deferred-payment (`owed`) path. Like a smart-contract wallet it signs through ERC-1271: a
/// signature counts as the wallet's when its owner made it (and `acceptsSignatures` is on), which is how it consents
/// to the terms and to a termination.
contract RefusingWallet is IERC1271 {
    address public immutable owner;
    bool public refusing;
    bool public acceptsSignatures = true;

    error NotOwner(address caller);
    error Refused();

    constructor() payable {
        owner = msg.sender;
    }

    function setRefusing(bool refusing_) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        refusing = refusing_;
    }

    function setAcceptsSignatures(bool accepts) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        acceptsSignatures = accepts;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(hash, signature);
        if (acceptsSignatures && error == ECDSA.RecoverError.NoError && signer == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
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
