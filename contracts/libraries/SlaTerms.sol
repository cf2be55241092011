// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title The on-chain form of an agreement's terms.
/// @notice Agreements store only keccak256 of the ABI-encoded Terms and take the encoded bytes as calldata
/// on every call that needs them. That keeps creation cheap (one storage slot for all terms) while the
/// factory's event still carries the complete terms for auditors.
library SlaTerms {
    uint32 internal constant PPM = 1_000_000;
    uint32 internal constant BPS = 10_000;
    uint256 internal constant MAX_PERIODS = 1024;
    /// @dev Services, oracles and tiers are bounded so that the worst settlement the terms allow (every oracle
    /// reporting every service) fits a 30M-gas block and a 128 kB transaction with room to spare: at the limits it
    /// takes about 4M gas and 80 kB (tests/contracts/test_term_limits.py). 64 services and 64 oracles took 38.8M gas
    /// and 280 kB, and only the fallback could settle such terms.
    uint256 internal constant MAX_SERVICES = 32;
    uint256 internal constant MAX_ORACLES = 16;
    uint256 internal constant MAX_TIERS = 16;
    /// @dev Credits are stored as uint24 in the period record.
    uint32 internal constant MAX_CAP_BPS = 1_000_000;
    /// @dev Amounts share the period record's slot as uint96: a fee, and a fee plus the bond, stay below this.
    uint256 internal constant AMOUNT_LIMIT = 2 ** 96;
    /// @dev Oracles need time to report before the fallback opens (with 0, a no-credit fallback could be taken the
    /// second a period ends); and a period must be closable within a bounded time after it ends.
    uint256 internal constant MIN_REPORT_DEADLINE = 300;
    uint256 internal constant MAX_REPORT_DEADLINE = 7_776_000; // 90 days
    /// @dev A notice beyond a year would make maintenance impossible in practice and only hides a typo.
    uint256 internal constant MAX_MAINTENANCE_NOTICE = 31_536_000; // 365 days
    uint256 internal constant MAX_MAINTENANCE_ALLOWANCE = 4_294_967_295; // uint32, the period record's field

    uint8 internal constant BASIS_PER_SERVICE = 0;
    uint8 internal constant BASIS_COMBINED = 1;
    uint8 internal constant COMBINE_WORST = 0;
    uint8 internal constant COMBINE_WEIGHTED = 1;

    struct Tier {
        uint32 threshold;
        uint32 creditBps;
    }

    /// @dev `target` and tier thresholds are ppm for availability, microseconds for lower-is-better objectives.
    struct Service {
        bytes32 id;
        uint32 target;
        uint32 weight;
        bool lowerIsBetter;
        Tier[] tiers;
    }

    struct Terms {
        address provider;
        address customer;
        address token; // address(0) is ETH
        uint256 fee;
        uint256 bond;
        uint64 start;
        uint64 periodLength;
        uint32 periodCount;
        Service[] services;
        uint8 basis;
        uint8 combine;
        Service combined;
        uint32 capBps;
        address[] oracles;
        uint8 quorum;
        /// @dev ppm: a report counts only if it measured at least this part of every service's eligible slices.
        uint32 minCoverage;
        uint64 reportDeadline;
        bool fallbackFullCredit;
        uint64 maintenanceAllowance;
        uint64 maintenanceNotice;
        bytes32 documentHash;
    }

    error InvalidTerms(string field, string reason);

    function decode(bytes calldata encoded) internal pure returns (Terms memory) {
        return abi.decode(encoded, (Terms));
    }

    /// @notice The terms as a calldata pointer into `encoded` (abi.encode of a Terms: one word with the struct's
    /// offset, then the struct), read field by field as needed instead of decoded whole into memory.
    /// @dev Only for bytes `decode` has accepted (the agreement checks their hash against the one the factory
    /// stored after decoding them): their offsets and lengths are then known to stay inside `encoded`.
    function inPlace(bytes calldata encoded) internal pure returns (Terms calldata t) {
        assembly ("memory-safe") {
            t := add(encoded.offset, calldataload(encoded.offset))
        }
    }

    /// @notice Rejects terms the contracts could not honour. The Python side validates first and with
    /// friendlier messages; this is the backstop for callers that skip it.
    function validate(Terms memory t) internal pure {
        if (t.provider == address(0)) revert InvalidTerms("provider", "zero address");
        if (t.customer == address(0)) revert InvalidTerms("customer", "zero address");
        if (t.provider == t.customer) revert InvalidTerms("customer", "same as provider");
        if (t.fee == 0 || t.fee >= AMOUNT_LIMIT) revert InvalidTerms("fee", "must be > 0 and < AMOUNT_LIMIT");
        if (t.fee + t.bond >= AMOUNT_LIMIT) revert InvalidTerms("bond", "fee + bond must be < AMOUNT_LIMIT");
        if (t.periodLength == 0) revert InvalidTerms("periodLength", "must be > 0");
        if (t.periodCount == 0 || t.periodCount > MAX_PERIODS) revert InvalidTerms("periodCount", "1..MAX_PERIODS");
        uint256 n = t.services.length;
        if (n == 0 || n > MAX_SERVICES) revert InvalidTerms("services", "1..MAX_SERVICES");
        if (t.basis > BASIS_COMBINED) revert InvalidTerms("basis", "0 or 1");
        if (t.combine > COMBINE_WEIGHTED) revert InvalidTerms("combine", "0 or 1");
        if (t.capBps == 0 || t.capBps > MAX_CAP_BPS) revert InvalidTerms("capBps", "1..MAX_CAP_BPS");
        for (uint256 i; i < n; ++i) {
            Service memory s = t.services[i];
            if (s.weight == 0) revert InvalidTerms("services.weight", "must be > 0");
            if (t.basis == BASIS_COMBINED && s.lowerIsBetter != t.combined.lowerIsBetter) {
                revert InvalidTerms("services.lowerIsBetter", "combined basis needs one objective");
            }
            _validateScale(s, t.capBps);
        }
        if (t.basis == BASIS_COMBINED) _validateScale(t.combined, t.capBps);
        uint256 m = t.oracles.length;
        if (m == 0 || m > MAX_ORACLES) revert InvalidTerms("oracles", "1..MAX_ORACLES");
        if (t.quorum == 0 || t.quorum > m) revert InvalidTerms("quorum", "1..oracles");
        if (t.minCoverage > PPM) revert InvalidTerms("minCoverage", "above 100%");
        if (t.reportDeadline < MIN_REPORT_DEADLINE || t.reportDeadline > MAX_REPORT_DEADLINE) {
            revert InvalidTerms("reportDeadline", "MIN_REPORT_DEADLINE..MAX_REPORT_DEADLINE");
        }
        // a period's maintenance seconds are recorded in 32 bits
        if (t.maintenanceAllowance > t.periodLength || t.maintenanceAllowance > MAX_MAINTENANCE_ALLOWANCE) {
            revert InvalidTerms("maintenanceAllowance", "above periodLength or MAX_MAINTENANCE_ALLOWANCE");
        }
        if (t.maintenanceNotice > MAX_MAINTENANCE_NOTICE) {
            revert InvalidTerms("maintenanceNotice", "above MAX_MAINTENANCE_NOTICE");
        }
        for (uint256 i; i < m; ++i) {
            if (t.oracles[i] == address(0)) revert InvalidTerms("oracles", "zero address");
            for (uint256 j; j < i; ++j) {
                if (t.oracles[i] == t.oracles[j]) revert InvalidTerms("oracles", "duplicate");
            }
        }
    }

    function _validateScale(Service memory s, uint32 capBps) private pure {
        if (!s.lowerIsBetter && s.target > PPM) revert InvalidTerms("target", "above 100%");
        uint256 k = s.tiers.length;
        if (k > MAX_TIERS) revert InvalidTerms("tiers", "at most MAX_TIERS");
        for (uint256 i; i < k; ++i) {
            Tier memory tier = s.tiers[i];
            if (!s.lowerIsBetter && tier.threshold > PPM) revert InvalidTerms("tiers.threshold", "above 100%");
            if (tier.creditBps == 0 || tier.creditBps > capBps) revert InvalidTerms("tiers.creditBps", "0 < credit <= cap");
            if (i > 0) {
                Tier memory prev = s.tiers[i - 1];
                bool moreSevere = s.lowerIsBetter ? tier.threshold > prev.threshold : tier.threshold < prev.threshold;
                if (!moreSevere || tier.creditBps <= prev.creditBps) {
                    revert InvalidTerms("tiers", "must go from mildest to most severe");
                }
            }
        }
    }
}
