// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SlaTerms} from "./SlaTerms.sol";

/// @title Penalty maths: from measured values to the credit and the split of a period's fee.
/// @notice Mirrored exactly by smartsla/penalty.py; the differential tests hold the two together.
library PenaltyMath {
    /// @notice A value that meets the target earns nothing; otherwise the most severe matching tier applies.
    /// Tiers are ordered mildest first, so the last match is the most severe.
    function serviceCredit(SlaTerms.Service calldata s, uint32 value) internal pure returns (uint32 credit) {
        // each calldata member read once: every read of a nested member re-checks its offset
        bool lower = s.lowerIsBetter;
        uint32 target = s.target;
        if (lower ? value <= target : value >= target) return 0;
        SlaTerms.Tier[] calldata tiers = s.tiers;
        uint256 k = tiers.length;
        for (uint256 i; i < k; ++i) {
            uint32 threshold = tiers[i].threshold;
            if (lower ? value > threshold : value < threshold) credit = tiers[i].creditBps;
        }
    }

    /// @notice Median of the oracles' values. With an even count the middle value less favourable to the
    /// provider wins, so one oracle inflating its numbers can never help the provider on its own.
    /// Sorts `values` in place.
    function median(uint32[] memory values, bool lowerIsBetter) internal pure returns (uint32) {
        uint256 n = values.length;
        for (uint256 i = 1; i < n; ++i) {
            uint32 key = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > key) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = key;
        }
        if (n % 2 == 1) return values[n / 2];
        return lowerIsBetter ? values[n / 2] : values[n / 2 - 1];
    }

    /// @notice Credit in basis points of the period fee, already capped.
    /// per-service: weight-averaged credit, rounded down. combined: one credit from the worst value or the
    /// weight-averaged value (rounded down).
    function periodCredit(SlaTerms.Terms calldata t, uint32[] memory values) internal pure returns (uint32) {
        SlaTerms.Service[] calldata services = t.services;
        uint256 n = services.length;
        uint256 weightSum;
        uint256 credit;
        if (t.basis == SlaTerms.BASIS_PER_SERVICE) {
            uint256 weighted;
            for (uint256 i; i < n; ++i) {
                SlaTerms.Service calldata service = services[i];
                uint32 w = service.weight;
                weightSum += w;
                weighted += uint256(w) * serviceCredit(service, values[i]);
            }
            credit = weighted / weightSum;
        } else {
            bool lower = t.combined.lowerIsBetter;
            uint256 combinedValue;
            if (t.combine == SlaTerms.COMBINE_WORST) {
                combinedValue = values[0];
                for (uint256 i = 1; i < n; ++i) {
                    if (lower ? values[i] > combinedValue : values[i] < combinedValue) combinedValue = values[i];
                }
            } else {
                uint256 weightedValues;
                for (uint256 i; i < n; ++i) {
                    uint32 w = services[i].weight;
                    weightSum += w;
                    weightedValues += uint256(w) * values[i];
                }
                combinedValue = weightedValues / weightSum;
            }
            credit = serviceCredit(t.combined, uint32(combinedValue));
        }
        return credit > t.capBps ? t.capBps : uint32(credit);
    }

    /// @notice Compensation is fee * credit / 10000 rounded down; up to the fee it comes from the fee, above
    /// it from what is left of the bond. The provider keeps the rest of the fee, rounding wei included.
    function split(uint256 fee, uint32 creditBps, uint256 bondLeft)
        internal
        pure
        returns (uint256 fromFee, uint256 fromBond, uint256 toProvider)
    {
        uint256 compensation = fee * creditBps / SlaTerms.BPS;
        fromFee = compensation < fee ? compensation : fee;
        uint256 excess = compensation - fromFee;
        fromBond = excess < bondLeft ? excess : bondLeft;
        toProvider = fee - fromFee;
    }

    function fallbackCredit(SlaTerms.Terms calldata t) internal pure returns (uint32) {
        if (!t.fallbackFullCredit) return 0;
        return t.capBps < SlaTerms.BPS ? t.capBps : SlaTerms.BPS;
    }
}
