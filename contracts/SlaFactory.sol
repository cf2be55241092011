// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {SlaTerms} from "./libraries/SlaTerms.sol";
import {SlaAgreement} from "./SlaAgreement.sol";

/// @title Creates agreements as minimal proxies of one implementation.
/// @notice The event carries the complete ABI-encoded terms and the hash of the canonical terms document,
/// so an auditor can rebuild every agreement from logs alone. The factory has no owner and no funds.
contract SlaFactory {
    address public immutable implementation;

    event AgreementCreated(
        address indexed agreement,
        address indexed provider,
        address indexed customer,
        bytes32 termsHash,
        bytes32 documentHash,
        bytes terms,
        address creator
    );

    constructor() {
        implementation = address(new SlaAgreement(address(this)));
    }

    /// @notice Refused: terms that do not validate, and bytes that are not the canonical encoding of the terms
    /// they decode to (one set of terms, one termsHash: an auditor's "same terms" is decidable from the hash).
    error NonCanonicalTerms();

    /// @notice Creates an agreement and records its creator. A creator that is the provider or the customer consents
    /// to the terms by creating them; the other party's consent is still needed (ISlaAgreement.accept).
    function create(bytes calldata encodedTerms) external returns (address agreement) {
        SlaTerms.Terms memory t = SlaTerms.decode(encodedTerms);
        SlaTerms.validate(t);
        bytes32 termsHash = keccak256(encodedTerms);
        if (keccak256(abi.encode(t)) != termsHash) revert NonCanonicalTerms();
        agreement = Clones.clone(implementation);
        SlaAgreement(payable(agreement)).initialize(
            termsHash, t.periodCount, msg.sender == t.provider, msg.sender == t.customer, t.bond == 0
        );
        emit AgreementCreated(agreement, t.provider, t.customer, termsHash, t.documentHash, encodedTerms, msg.sender);
    }

    /// @notice The canonical encoding `create` expects; also publishes the Terms layout in this ABI.
    function encodeTerms(SlaTerms.Terms calldata t) external pure returns (bytes memory) {
        return abi.encode(t);
    }

    /// @notice Checks terms as `create` would, without creating anything.
    function validateTerms(bytes calldata encodedTerms) external pure returns (bytes32 termsHash) {
        SlaTerms.Terms memory t = SlaTerms.decode(encodedTerms);
        SlaTerms.validate(t);
        termsHash = keccak256(encodedTerms);
        if (keccak256(abi.encode(t)) != termsHash) revert NonCanonicalTerms();
    }
}
