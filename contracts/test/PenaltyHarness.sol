// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SlaTerms} from "../libraries/SlaTerms.sol";
import {PenaltyMath} from "../libraries/PenaltyMath.sol";

/// @title Test-only: PenaltyMath behind external pure functions.
/// @notice The differential tests eth_call these against smartsla/penalty.py. The batch forms exist because
/// one eth_call per case would make thousands of cases too slow on the embedded chain.
contract PenaltyHarness {
    function serviceCredit(SlaTerms.Service calldata s, uint32 value) external pure returns (uint32) {
        return PenaltyMath.serviceCredit(s, value);
    }

    function serviceCredits(SlaTerms.Service calldata s, uint32[] calldata values)
        external
        pure
        returns (uint32[] memory out)
    {
        out = new uint32[](values.length);
        for (uint256 i; i < values.length; ++i) {
            out[i] = PenaltyMath.serviceCredit(s, values[i]);
        }
    }

    function median(uint32[] memory values, bool lowerIsBetter) external pure returns (uint32) {
        return PenaltyMath.median(values, lowerIsBetter);
    }

    function medians(uint32[][] memory sets, bool lowerIsBetter) external pure returns (uint32[] memory out) {
        out = new uint32[](sets.length);
        for (uint256 i; i < sets.length; ++i) {
            out[i] = PenaltyMath.median(sets[i], lowerIsBetter);
        }
    }

    function periodCredit(SlaTerms.Terms calldata t, uint32[] calldata values) external pure returns (uint32) {
        return PenaltyMath.periodCredit(t, values);
    }

    function periodCredits(SlaTerms.Terms calldata t, uint32[][] calldata valueSets)
        external
        pure
        returns (uint32[] memory out)
    {
        out = new uint32[](valueSets.length);
        for (uint256 i; i < valueSets.length; ++i) {
            out[i] = PenaltyMath.periodCredit(t, valueSets[i]);
        }
    }

    function split(uint256 fee, uint32 creditBps, uint256 bondLeft)
        external
        pure
        returns (uint256 fromFee, uint256 fromBond, uint256 toProvider)
    {
        return PenaltyMath.split(fee, creditBps, bondLeft);
    }

    function splits(uint256[] calldata fees, uint32[] calldata credits, uint256[] calldata bonds)
        external
        pure
        returns (uint256[3][] memory out)
    {
        out = new uint256[3][](fees.length);
        for (uint256 i; i < fees.length; ++i) {
            (out[i][0], out[i][1], out[i][2]) = PenaltyMath.split(fees[i], credits[i], bonds[i]);
        }
    }

    function fallbackCredit(SlaTerms.Terms calldata t) external pure returns (uint32) {
        return PenaltyMath.fallbackCredit(t);
    }
}
