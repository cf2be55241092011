// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {SlaTerms} from "./libraries/SlaTerms.sol";
import {SlaAgreement} from "./SlaAgreement.sol";
import {ISlaAgreement} from "./interfaces/ISlaAgreement.sol";

/// @title Creates agreements as minimal proxies of one implementation.
/// @notice The event carries the complete ABI-encoded terms and the hash of the canonical terms document,
/// so an auditor can rebuild every agreement from logs alone. The factory has no owner and no funds.
contract SlaFactory {
    address public immutable implementation;
    /// @dev The code hash of every agreement this factory creates (an EIP-1167 clone of `implementation`): what
    /// settleBatch calls, and nothing else.
    bytes32 private immutable _agreementCodeHash;

    /// @notice One item of settleBatch: the arguments of `SlaAgreement.settle` and the agreement they go to.
    struct Settlement {
        address agreement;
        bytes encodedTerms;
        uint256 index;
        ISlaAgreement.Report[] reports;
    }

    event AgreementCreated(
        address indexed agreement,
        address indexed provider,
        address indexed customer,
        bytes32 termsHash,
        bytes32 documentHash,
        bytes terms,
        address creator
    );

    /// @notice An item of settleBatch did not settle (a peer settled it first, a report was refused, ...): its
    /// position in the batch and the agreement's revert data. The batch's other items are settled all the same.
    event BatchItemFailed(uint256 indexed position, address indexed agreement, bytes reason);

    /// @notice Refused by settleBatch: an address that is not an agreement of this factory.
    error NotAnAgreement(address target);

    /// @notice settleBatch's item `position` failed without revert data, as a call that ran out of gas does: the
    /// whole batch is refused, so that a gas limit too low for it never passes for a batch of failed items.
    error BatchItemOutOfGas(uint256 position);

    constructor() {
        implementation = address(new SlaAgreement(address(this)));
        _agreementCodeHash = keccak256(
            abi.encodePacked(hex"363d3d373d3d3d363d73", implementation, hex"5af43d82803e903d91602b57fd5bf3")
        );
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

    /// @notice Settles periods of several agreements in one transaction, each exactly as its agreement's `settle`
    /// would (anyone may submit; the agreement checks the reports and pays; the factory holds nothing and decides
    /// nothing). Saves the transaction's base cost and the cold accesses the items share (token, recipients).
    /// An item that reverts is skipped and logged as BatchItemFailed; the batch reverts only for a target that is
    /// not one of this factory's agreements. Returns how many items settled.
    function settleBatch(Settlement[] calldata batch) external returns (uint256 settled) {
        bytes32 agreementCodeHash = _agreementCodeHash;
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }
        for (uint256 i; i < batch.length; ++i) {
            Settlement calldata item = batch[i];
            if (item.agreement.codehash != agreementCodeHash) revert NotAnAgreement(item.agreement);
            try SlaAgreement(payable(item.agreement)).settle(item.encodedTerms, item.index, item.reports) {
                ++settled;
            } catch (bytes memory reason) {
                // No revert data is what running out of gas gives (an agreement names every error it raises): a
                // batch sent with too little gas must fail whole, not "succeed" having settled nothing, or a gas
                // estimate would settle on such a limit.
                if (reason.length == 0) revert BatchItemOutOfGas(i);
                emit BatchItemFailed(i, item.agreement, reason);
            }
            // Each item's encoded arguments are dead once its call returns: reuse their memory, so that a batch's
            // memory cost grows with its largest item, not (quadratically) with all of them.
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
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
