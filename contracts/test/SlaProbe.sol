// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

interface IAgreementState {
    function bondBalance() external view returns (uint96);
    function openFundedPeriods() external view returns (uint32);
    function activePeriods() external view returns (uint32);
    function nextFundable() external view returns (uint32);
    function closed() external view returns (bool);
    function owed(address account) external view returns (uint256);
}

/// @title Test-only: every number the stateful test checks after each step, in one eth_call.
/// @notice Dozens of separate view calls per step would make the state machine too slow on the embedded chain.
contract SlaProbe {
    uint256 public constant FIELDS = 6;

    /// @return perAgreement for each agreement: bondBalance, openFundedPeriods, activePeriods, nextFundable,
    /// closed, balance in its token, then owed(parties[j]) for every party.
    function agreements(address[] calldata list, address[] calldata tokens, address[] calldata parties)
        external
        view
        returns (uint256[] memory perAgreement)
    {
        uint256 width = FIELDS + parties.length;
        perAgreement = new uint256[](list.length * width);
        for (uint256 i; i < list.length; ++i) {
            _fill(perAgreement, i * width, list[i], tokens[i], parties);
        }
    }

    /// @return tokenBalances balanceOf each account in `token`
    /// @return ethBalances ETH of each account
    /// @return supply the token's totalSupply
    function balances(address token, address[] calldata accounts)
        external
        view
        returns (uint256[] memory tokenBalances, uint256[] memory ethBalances, uint256 supply)
    {
        tokenBalances = new uint256[](accounts.length);
        ethBalances = new uint256[](accounts.length);
        for (uint256 j; j < accounts.length; ++j) {
            tokenBalances[j] = IERC20(token).balanceOf(accounts[j]);
            ethBalances[j] = accounts[j].balance;
        }
        supply = IERC20(token).totalSupply();
    }

    function _fill(uint256[] memory out, uint256 o, address agreement, address token, address[] calldata parties)
        private
        view
    {
        IAgreementState a = IAgreementState(agreement);
        out[o] = a.bondBalance();
        out[o + 1] = a.openFundedPeriods();
        out[o + 2] = a.activePeriods();
        out[o + 3] = a.nextFundable();
        out[o + 4] = a.closed() ? 1 : 0;
        out[o + 5] = token == address(0) ? agreement.balance : IERC20(token).balanceOf(agreement);
        for (uint256 j; j < parties.length; ++j) {
            out[o + FIELDS + j] = a.owed(parties[j]);
        }
    }
}
