// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Test-only: an ERC-20 whose owner can stop an address from receiving, like a sanctions list.
/// @notice Lets the tests drive an agreement's deferred-payment (`owed`) path with ordinary accounts.
contract BlockingToken is ERC20 {
    address public immutable owner;
    mapping(address account => bool) public blocked;

    error RecipientBlocked(address to);
    error NotOwner(address caller);

    constructor() ERC20("Blocking USD", "bUSD") {
        owner = msg.sender;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _mint(to, amount);
    }

    function setBlocked(address account, bool isBlocked) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        blocked[account] = isBlocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (to != address(0) && blocked[to]) revert RecipientBlocked(to);
        super._update(from, to, value);
    }
}
