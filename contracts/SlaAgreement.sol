// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ISlaAgreement} from "./interfaces/ISlaAgreement.sol";
import {SlaTerms} from "./libraries/SlaTerms.sol";
import {PenaltyMath} from "./libraries/PenaltyMath.sol";

/// @title One service level agreement: escrow, k-of-n oracle reports, automatic compensation.
/// @notice Deployed as a minimal proxy by SlaFactory. Nobody, the factory included, can change the terms
/// or move money other than by the rules below; there is no owner and no upgrade path. The events, errors and
/// types, with their documentation, are in ISlaAgreement.
contract SlaAgreement is ISlaAgreement, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(uint256 period,uint32[] values,uint32[] coverage,bytes32 evidenceRoot)"
    );
    /// @dev A party's consent to this agreement's terms, for one that signs rather than calls (a cold key, an
    /// ERC-1271 wallet); the domain binds it to this agreement, so it cannot bind the party to a copy of the terms.
    bytes32 public constant CONSENT_TYPEHASH = keccak256("Consent(bytes32 termsHash)");
    bytes32 public constant TERMINATION_TYPEHASH =
        keccak256("Termination(uint32 activePeriods,uint64 deadline,uint32 nonce)");
    /// @dev Enough for a contract wallet to accept ETH; a receiver that needs more, or reverts, gets its
    /// share kept for withdrawal instead of holding up the settlement.
    uint256 public constant ETH_PUSH_GAS = 30_000;
    /// @dev Five times an ERC-20 transfer to a new holder behind a proxy (about 60,000 for the common stablecoins),
    /// room for tokens whose transfers run hooks; a token whose transfer to this recipient burns more costs the
    /// settler at most this, and the share is kept for withdrawal.
    uint256 public constant TOKEN_PUSH_GAS = 300_000;
    uint8 private constant PROVIDER_CONSENT = 1;
    uint8 private constant CUSTOMER_CONSENT = 2;
    uint8 private constant BOTH_CONSENTS = 3;

    address public immutable factory;

    bytes32 public termsHash;
    /// @notice Periods that run; lowered by an agreed early termination.
    uint32 public activePeriods;
    /// @notice The first period the next deposit may fund.
    uint32 public nextFundable;
    /// @notice Funded periods not yet settled or refunded; the bond is released only when this is 0.
    uint32 public openFundedPeriods;
    bool public closed;
    uint96 public bondBalance;
    /// @notice What every termination consent must name: moved on by each termination and by a party's
    /// revocation, so a superseded or withdrawn offer can never be executed.
    uint32 public terminationNonce;
    /// @dev Which parties have agreed to these terms on-chain (by creating the agreement, by `accept`, the provider
    /// by posting bond, the customer by funding): PROVIDER_CONSENT and CUSTOMER_CONSENT bits. Until both have, no
    /// period settles and nothing is funded. One byte, so a settlement checks both with one read.
    uint8 private _consents;
    /// @notice Whether the bond has reached the terms' bond (true from the start when they ask for none): no
    /// period can be funded before, so the collateral is in place before the customer's money is.
    bool public bondPosted;

    mapping(uint256 period => PeriodRecord) private _periods;
    /// @notice Money kept for a recipient whose transfer failed during settlement or refund.
    mapping(address account => uint256) public owed;

    /// @dev A modifier rather than a function: the check is written once and costs no call at each use.
    modifier whenOpen() {
        if (closed) revert AgreementClosed();
        _;
    }

    constructor(address factory_) EIP712("SmartSLA", "1") {
        factory = factory_;
        // The implementation itself must never hold terms or money.
        termsHash = bytes32(uint256(1));
    }

    function initialize(
        bytes32 termsHash_,
        uint32 periodCount,
        bool providerCreated,
        bool customerCreated,
        bool noBondDue
    ) external {
        if (msg.sender != factory) revert NotFactory();
        if (termsHash != bytes32(0)) revert AlreadyInitialized();
        termsHash = termsHash_;
        activePeriods = periodCount;
        _consents = (providerCreated ? PROVIDER_CONSENT : 0) | (customerCreated ? CUSTOMER_CONSENT : 0);
        bondPosted = noBondDue;
    }

    // ---------------------------------------------------------------- consent

    /// @notice A party agrees to the terms. Creating the agreement counts, as do (for the provider) posting bond and
    /// (for the customer) funding; this is for a party that does neither first, a contract wallet included.
    function accept(bytes calldata encodedTerms) external nonReentrant whenOpen {
        _consent(_terms(encodedTerms), msg.sender);
    }

    /// @notice Anyone submits a party's signed consent (EIP-712 `Consent(bytes32 termsHash)` for this agreement, by
    /// the party's key or, for a contract wallet, accepted by its ERC-1271 `isValidSignature`).
    function acceptFor(bytes calldata encodedTerms, address party, bytes calldata signature)
        external
        nonReentrant
        whenOpen
    {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        _requireConsent(party, _consentDigest(), signature);
        _consent(t, party);
    }

    function _consent(SlaTerms.Terms calldata t, address party) private {
        uint8 bit;
        if (party == t.provider) bit = PROVIDER_CONSENT;
        else if (party == t.customer) bit = CUSTOMER_CONSENT;
        else revert NotAParty(party);
        uint8 consents = _consents;
        if (consents & bit != 0) revert AlreadyConsented(party);
        _consents = consents | bit;
        emit Consented(party);
    }

    /// @notice Whether the provider has agreed to these terms on-chain.
    function providerConsented() public view returns (bool) {
        return _consents & PROVIDER_CONSENT != 0;
    }

    /// @notice Whether the customer has agreed to these terms on-chain.
    function customerConsented() public view returns (bool) {
        return _consents & CUSTOMER_CONSENT != 0;
    }

    // ---------------------------------------------------------------- money in

    /// @notice The customer escrows `periods` fees. They fund the next periods that have not begun, from
    /// `firstPeriod`, which the caller names so that a transaction landing after a period began is refused rather
    /// than funding later periods than meant; a period that began unfunded stays unfunded.
    function fund(bytes calldata encodedTerms, uint32 firstPeriod, uint32 periods)
        external
        payable
        nonReentrant
        whenOpen
    {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (msg.sender != t.customer) revert NotCustomer(msg.sender);
        if (periods == 0) revert NothingToFund();
        uint8 consents = _consents;
        if (consents & PROVIDER_CONSENT == 0) revert NotYetBinding(false, consents & CUSTOMER_CONSENT != 0);
        if (!bondPosted) revert BondNotPosted(t.bond, bondBalance);
        uint256 first = _firstUnstarted(t);
        if (nextFundable > first) first = nextFundable;
        if (firstPeriod != first) revert FundingMoved(firstPeriod, first);
        uint256 active = activePeriods;
        if (first + periods > active) revert FundingBeyondTerm(first, periods, active);
        uint256 amount = t.fee * periods;
        _collect(t.token, msg.sender, amount);
        for (uint256 p = first; p < first + periods; ++p) {
            _periods[p].state = PeriodState.Funded;
        }
        nextFundable = uint32(first + periods);
        openFundedPeriods += periods;
        if (consents & CUSTOMER_CONSENT == 0) {
            _consents = BOTH_CONSENTS;
            emit Consented(msg.sender);
        }
        emit Funded(msg.sender, first, periods, amount);
    }

    /// @notice The provider's collateral, paid out only for credits above 100% of a fee. No period can be funded
    /// until it reaches the terms' bond; more may be added at any time.
    function postBond(bytes calldata encodedTerms, uint96 amount) external payable nonReentrant whenOpen {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (msg.sender != t.provider) revert NotProvider(msg.sender);
        if (amount == 0) revert NothingToFund();
        uint256 newBond = uint256(bondBalance) + amount;
        if (newBond + t.fee >= SlaTerms.AMOUNT_LIMIT) revert BondTooLarge(newBond, SlaTerms.AMOUNT_LIMIT - t.fee);
        _collect(t.token, msg.sender, amount);
        bondBalance = uint96(newBond);
        if (newBond >= t.bond) bondPosted = true;
        uint8 consents = _consents;
        if (consents & PROVIDER_CONSENT == 0) {
            _consents = consents | PROVIDER_CONSENT;
            emit Consented(msg.sender);
        }
        emit BondPosted(msg.sender, amount, bondBalance);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Settles a period from a quorum of signed oracle reports and pays both parties at once.
    /// Anyone may submit. Each service's value is the median of the submitted values.
    function settle(bytes calldata encodedTerms, uint256 index, Report[] calldata reports) external nonReentrant {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        _requireSettleable(t, index);
        uint32[] memory medians = _medians(t, index, reports);
        _settle(t, index, PenaltyMath.periodCredit(t, medians), medians, PeriodState.Settled);
    }

    /// @dev Checks each report (value and coverage counts, signer in the oracle set, no signer twice, availability
    /// and coverage at most 100%, coverage at least the terms' minimum), emits ReportAccepted for it (in
    /// _acceptedSigner), and returns each service's median.
    function _medians(SlaTerms.Terms calldata t, uint256 index, Report[] calldata reports)
        private
        returns (uint32[] memory medians)
    {
        uint256 k = reports.length;
        if (k < t.quorum) revert QuorumNotReached(k, t.quorum);
        uint256 n = t.services.length;
        uint32[][] memory byService = new uint32[][](n);
        // bit s: service s is lower-is-better; read once, not once per report (MAX_SERVICES fits the word)
        uint256 lowerIsBetter;
        {
            SlaTerms.Service[] calldata services = t.services;
            for (uint256 s; s < n; ++s) {
                byService[s] = new uint32[](k);
                if (services[s].lowerIsBetter) lowerIsBetter |= 1 << s;
            }
        }
        uint256 seen;
        // One domain separator for every report: a clone's address is not the implementation's, so EIP712 would
        // rebuild it for each.
        bytes32 domain = _domainSeparatorV4();
        for (uint256 r; r < k; ++r) {
            Report calldata report = reports[r];
            (address signer, uint256 bit) = _acceptedSigner(t, index, domain, report);
            if (seen & bit != 0) revert DuplicateSigner(signer);
            seen |= bit;
            uint32[] calldata values = report.values;
            for (uint256 s; s < n; ++s) {
                uint32 v = values[s];
                if (v > SlaTerms.PPM && lowerIsBetter & (1 << s) == 0) revert ValueOutOfRange(s, v);
                byService[s][r] = v;
            }
        }
        medians = new uint32[](n);
        for (uint256 s; s < n; ++s) {
            medians[s] = PenaltyMath.median(byService[s], (lowerIsBetter >> s) & 1 != 0);
        }
    }

    /// @dev One report's signer and its bit in the oracle set, once its counts are right, the signer is an oracle
    /// and its coverage of every service is within 0..100% and at least the terms' minimum; emits ReportAccepted
    /// (a value out of range found after it reverts the whole settlement, the log with it). Apart from _medians to
    /// keep that loop's stack small.
    function _acceptedSigner(SlaTerms.Terms calldata t, uint256 index, bytes32 domain, Report calldata report)
        private
        returns (address signer, uint256 bit)
    {
        uint32[] calldata coverage = report.coverage;
        {
            uint32[] calldata values = report.values;
            uint256 n = t.services.length;
            if (values.length != n) revert WrongValueCount(n, values.length);
            if (coverage.length != n) revert WrongValueCount(n, coverage.length);
            bytes32 structHash = _reportStructHash(index, values, coverage, report.evidenceRoot);
            signer = _recover(MessageHashUtils.toTypedDataHash(domain, structHash), report.signature);
        }
        bit = 1 << _oracleIndex(t.oracles, signer);
        uint256 minCoverage = t.minCoverage;
        for (uint256 s; s < coverage.length; ++s) {
            uint32 c = coverage[s];
            if (c > SlaTerms.PPM) revert CoverageOutOfRange(s, c);
            if (c < minCoverage) revert CoverageTooLow(signer, s, c, minCoverage);
        }
        emit ReportAccepted(index, signer, report.values, coverage, report.evidenceRoot);
    }

    /// @dev ECDSA.recover for a 65-byte signature read in place from calldata (no copy to memory), with its errors.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) revert ECDSA.ECDSAInvalidSignatureLength(signature.length);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        return ECDSA.recover(digest, v, r, s);
    }

    /// @notice With no quorum by `reportDeadline` after a period's end, anyone settles it by the
    /// agreed fallback, so no period can stay open for ever.
    function settleByFallback(bytes calldata encodedTerms, uint256 index) external nonReentrant {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        _requireSettleable(t, index);
        uint256 fallbackFrom = _periodEnd(t, index) + t.reportDeadline;
        if (block.timestamp < fallbackFrom) revert DeadlineNotReached(index, fallbackFrom);
        _settle(t, index, PenaltyMath.fallbackCredit(t), new uint32[](0), PeriodState.SettledByFallback);
    }

    // ---------------------------------------------------------------- money out

    /// @notice Takes what a failed transfer left owed to the caller, optionally to another address
    /// (for a recipient that cannot receive the token itself).
    function withdraw(bytes calldata encodedTerms, address to) external nonReentrant {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (to == address(0)) revert ZeroRecipient();
        if (to == address(this)) revert RecipientIsAgreement();
        _payOut(t.token, msg.sender, to);
    }

    /// @notice Pays an owner what it is owed, to itself; anyone may trigger it (a treasury contract that cannot call
    /// the agreement still gets paid), only the owner may redirect it (`withdraw`).
    function payOwed(bytes calldata encodedTerms, address account) external nonReentrant {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        _payOut(t.token, account, account);
    }

    /// @dev All of `owner`'s owed money to `to`, with all the gas the caller gives: unlike a settlement's push, the
    /// recipient here is chosen by the caller, who pays for it; a failure reverts and leaves the money owed.
    function _payOut(address token, address owner, address to) private {
        uint256 amount = owed[owner];
        if (amount == 0) revert NothingToWithdraw(owner);
        owed[owner] = 0;
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert TransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
        emit Withdrawn(owner, to, amount);
    }

    /// @notice Both parties end the agreement early: periods that have begun run to their end and settle as
    /// usual; funded periods that have not begun are refunded to the customer. Either party may send the
    /// transaction; both must have signed.
    function terminate(
        bytes calldata encodedTerms,
        uint32 newActivePeriods,
        uint64 deadline,
        bytes calldata providerSignature,
        bytes calldata customerSignature
    ) external nonReentrant whenOpen {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (block.timestamp > deadline) revert TerminationExpired(deadline);
        uint256 earliest = _firstUnstarted(t);
        uint256 active = activePeriods;
        if (newActivePeriods < earliest || newActivePeriods >= active) {
            revert InvalidTermination(newActivePeriods, earliest, active);
        }
        bytes32 digest = _terminationDigest(newActivePeriods, deadline, terminationNonce);
        ++terminationNonce;
        _requireConsent(t.provider, digest, providerSignature);
        _requireConsent(t.customer, digest, customerSignature);

        uint256 refundedPeriods;
        for (uint256 p = newActivePeriods; p < active; ++p) {
            PeriodRecord storage rec = _periods[p];
            if (rec.state == PeriodState.Funded) {
                rec.state = PeriodState.Refunded;
                ++refundedPeriods;
            }
        }
        activePeriods = newActivePeriods;
        if (nextFundable > newActivePeriods) nextFundable = newActivePeriods;
        openFundedPeriods -= uint32(refundedPeriods);
        uint256 refund = refundedPeriods * t.fee;
        emit Terminated(newActivePeriods, refundedPeriods, refund);
        _pay(t.token, t.customer, refund);
    }

    /// @notice A party withdraws every consent to terminate it has given and not yet seen executed (the other
    /// party's too: a consent is only ever half of a termination).
    function revokeTerminationConsents(bytes calldata encodedTerms) external nonReentrant whenOpen {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (msg.sender != t.provider && msg.sender != t.customer) revert NotAParty(msg.sender);
        uint32 nonce = ++terminationNonce;
        emit TerminationConsentsRevoked(msg.sender, nonce);
    }

    /// @notice After the last active period has ended and every funded period is settled, returns the
    /// bond to the provider. Anyone may call it. Before both parties have consented either may call it at any
    /// time: an offer not taken up can be withdrawn (nothing is funded then, so only the bond is returned).
    function close(bytes calldata encodedTerms) external nonReentrant whenOpen {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        uint256 active = activePeriods;
        // An agreement terminated before its first period has nothing left to run.
        uint256 endsAt = active == 0 ? 0 : _periodStart(t, active);
        bool withdrawnOffer =
            _consents != BOTH_CONSENTS && (msg.sender == t.provider || msg.sender == t.customer);
        if (!withdrawnOffer && (block.timestamp < endsAt || openFundedPeriods != 0)) {
            revert NotYetClosable(endsAt, openFundedPeriods);
        }
        closed = true;
        uint256 bond = bondBalance;
        bondBalance = 0;
        emit Closed(bond);
        _pay(t.token, t.provider, bond);
    }

    // ---------------------------------------------------------------- maintenance

    /// @notice The provider announces a maintenance window. The contract enforces the notice and the
    /// per-period allowance; oracles and auditors read the exclusions from this event.
    function announceMaintenance(bytes calldata encodedTerms, uint64 start, uint64 duration) external nonReentrant whenOpen {
        SlaTerms.Terms calldata t = _terms(encodedTerms);
        if (msg.sender != t.provider) revert NotProvider(msg.sender);
        if (duration == 0) revert EmptyWindow();
        uint256 earliestStart = block.timestamp + t.maintenanceNotice;
        if (start < earliestStart) revert InsufficientNotice(start, earliestStart);
        uint256 end = uint256(start) + duration;
        uint256 termEnd = _periodStart(t, activePeriods);
        if (start < t.start || end > termEnd) revert WindowOutsideTerm(start, end);
        uint256 length = t.periodLength;
        uint256 p = (start - t.start) / length;
        for (uint256 pStart = _periodStart(t, p); pStart < end; pStart += length) {
            uint256 pEnd = pStart + length;
            uint256 overlap = (end < pEnd ? end : pEnd) - (start > pStart ? start : pStart);
            PeriodRecord storage rec = _periods[p];
            uint256 used = rec.maintenanceSeconds + overlap;
            if (used > t.maintenanceAllowance) revert AllowanceExceeded(p, used, t.maintenanceAllowance);
            rec.maintenanceSeconds = uint32(used);
            ++p;
        }
        emit MaintenanceAnnounced(start, uint64(end));
    }

    // ---------------------------------------------------------------- views

    function period(uint256 index) external view returns (PeriodRecord memory) {
        return _periods[index];
    }

    /// @notice Digest the oracles sign for a report (EIP-712, bound to this agreement and chain).
    function reportDigest(
        uint256 periodIndex,
        uint32[] calldata values,
        uint32[] calldata coverage,
        bytes32 evidenceRoot
    ) external view returns (bytes32) {
        return _reportDigest(periodIndex, values, coverage, evidenceRoot);
    }

    /// @notice Digest a party signs to consent to this agreement's terms (`acceptFor`).
    function consentDigest() external view returns (bytes32) {
        return _consentDigest();
    }

    function terminationDigest(uint32 newActivePeriods, uint64 deadline, uint32 nonce) external view returns (bytes32) {
        return _terminationDigest(newActivePeriods, deadline, nonce);
    }

    receive() external payable {
        revert UnexpectedEther();
    }

    // ---------------------------------------------------------------- internals

    /// @dev The terms read in place from the caller's bytes, never decoded into memory: they are the very bytes
    /// the factory decoded and validated at creation (the hash says so), so every offset in them stays inside them.
    function _terms(bytes calldata encodedTerms) private view returns (SlaTerms.Terms calldata) {
        if (keccak256(encodedTerms) != termsHash) revert TermsMismatch();
        return SlaTerms.inPlace(encodedTerms);
    }

    function _reportDigest(
        uint256 periodIndex,
        uint32[] calldata values,
        uint32[] calldata coverage,
        bytes32 evidenceRoot
    ) private view returns (bytes32) {
        return _hashTypedDataV4(_reportStructHash(periodIndex, values, coverage, evidenceRoot));
    }

    function _reportStructHash(
        uint256 periodIndex,
        uint32[] calldata values,
        uint32[] calldata coverage,
        bytes32 evidenceRoot
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(REPORT_TYPEHASH, periodIndex, _hashWords(values), _hashWords(coverage), evidenceRoot));
    }

    /// @dev EIP-712's hash of a uint32[] member: keccak of its elements, each padded to 32 bytes, which is exactly
    /// how calldata holds them; hashed in place in scratch memory (not kept: the free pointer does not move), so a
    /// report costs no copy per element. A value with dirty high bits hashes to another digest and recovers to
    /// another signer (NotAnOracle); the values the contract uses are read through the ABI decoder, which refuses
    /// them.
    function _hashWords(uint32[] calldata words) private pure returns (bytes32 hash) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := mul(words.length, 0x20)
            calldatacopy(ptr, words.offset, size)
            hash := keccak256(ptr, size)
        }
    }

    function _consentDigest() private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, termsHash)));
    }

    function _terminationDigest(uint32 newActivePeriods, uint64 deadline, uint32 nonce) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(TERMINATION_TYPEHASH, newActivePeriods, deadline, nonce)));
    }

    /// @dev The start of period `index`; so also the end of period `index - 1` and of a term of `index` periods.
    function _periodStart(SlaTerms.Terms calldata t, uint256 index) private pure returns (uint256) {
        return uint256(t.start) + index * uint256(t.periodLength);
    }

    function _periodEnd(SlaTerms.Terms calldata t, uint256 index) private pure returns (uint256) {
        return uint256(t.start) + (index + 1) * uint256(t.periodLength);
    }

    function _firstUnstarted(SlaTerms.Terms calldata t) private view returns (uint256) {
        if (block.timestamp < t.start) return 0;
        return (block.timestamp - t.start) / t.periodLength + 1;
    }

    function _requireSettleable(SlaTerms.Terms calldata t, uint256 index) private view {
        // A party that never agreed to the terms has nothing recorded against it, a measured 0% included.
        if (_consents != BOTH_CONSENTS) revert NotYetBinding(providerConsented(), customerConsented());
        if (index >= activePeriods) revert PeriodNotActive(index, activePeriods);
        uint256 endsAt = _periodEnd(t, index);
        if (block.timestamp < endsAt) revert PeriodNotOver(index, endsAt);
        PeriodState state = _periods[index].state;
        if (state != PeriodState.Funded && state != PeriodState.Unfunded) revert PeriodAlreadySettled(index);
    }

    /// @dev A consent (to the terms, or to a termination) by `party`: an ECDSA signature from an account, or one its
    /// contract wallet accepts (ERC-1271), as OpenZeppelin's SignatureChecker decides. The error names the signer an ECDSA
    /// signature recovers to, or the zero address.
    function _requireConsent(address party, bytes32 digest, bytes calldata signature) private view {
        if (SignatureChecker.isValidSignatureNow(party, digest, signature)) return;
        (address signer,,) = ECDSA.tryRecover(digest, signature);
        revert BadConsent(party, signer);
    }

    function _oracleIndex(address[] calldata oracles, address signer) private pure returns (uint256) {
        uint256 m = oracles.length;
        for (uint256 i; i < m; ++i) {
            if (oracles[i] == signer) return i;
        }
        revert NotAnOracle(signer);
    }

    function _settle(
        SlaTerms.Terms calldata t,
        uint256 index,
        uint32 creditBps,
        uint32[] memory values,
        PeriodState how
    ) private {
        PeriodRecord storage rec = _periods[index];
        if (rec.state == PeriodState.Unfunded) {
            rec.state = PeriodState.SettledUnfunded;
            rec.creditBps = uint24(creditBps);
            emit PeriodSettled(index, PeriodState.SettledUnfunded, values, creditBps, 0, 0, 0);
            return;
        }
        (uint256 fromFee, uint256 fromBond, uint256 toProvider) = PenaltyMath.split(t.fee, creditBps, bondBalance);
        if (fromBond != 0) bondBalance -= uint96(fromBond);
        openFundedPeriods -= 1;
        uint256 compensation = fromFee + fromBond;
        rec.state = how;
        rec.creditBps = uint24(creditBps);
        rec.compensation = uint96(compensation);
        rec.providerPayout = uint96(toProvider);
        emit PeriodSettled(index, how, values, creditBps, compensation, fromBond, toProvider);
        _pay(t.token, t.customer, compensation);
        _pay(t.token, t.provider, toProvider);
    }

    /// @dev SafeERC20.trySafeTransfer's verdict (the call succeeded, and returned true or nothing from a contract)
    /// with the gas capped at TOKEN_PUSH_GAS and at most one word of return data copied. As with the ETH push, a
    /// settler cannot make an honest transfer fail by a tight gas limit: with less than the cap left, the caller
    /// keeps only 1/64, too little to record a deferral, and the whole settlement fails instead.
    function _tryTokenPush(address token, address to, uint256 amount) private returns (bool ok) {
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, amount));
        assembly ("memory-safe") {
            let success := call(TOKEN_PUSH_GAS, token, 0, add(data, 0x20), mload(data), 0, 0x20)
            let size := returndatasize()
            ok := and(success, or(and(iszero(size), gt(extcodesize(token), 0)), and(gt(size, 31), eq(mload(0), 1))))
        }
    }

    function _collect(address token, address from, uint256 amount) private {
        if (token == address(0)) {
            if (msg.value != amount) revert WrongPaymentAmount(amount, msg.value);
        } else {
            if (msg.value != 0) revert UnexpectedEther();
            // What the agreement records must be what it holds: a token that takes a fee on transfer (or pays less
            // for any reason) would leave the last payee's share unpayable for ever, so it is refused here.
            uint256 before = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(from, address(this), amount);
            uint256 afterwards = IERC20(token).balanceOf(address(this));
            if (afterwards != before + amount) {
                revert TokenNotExact(token, amount, afterwards > before ? afterwards - before : 0);
            }
        }
    }

    /// @dev Never reverts for the recipient's sake: one that refuses the transfer has it kept in `owed`
    /// instead. Successful payments have no event of their own: the event of the step that pays
    /// (PeriodSettled, Terminated, Closed) names the amounts, and PaymentDeferred marks the exceptions.
    function _pay(address token, address to, uint256 amount) private {
        if (amount == 0) return;
        bool ok;
        if (token == address(0)) {
            // A settler cannot starve this push with a tight gas limit: a call given less than the stipend
            // leaves the caller at most 1/64 of it, too little to record the deferral, so the whole settlement
            // fails instead (tests/contracts/test_payment_gas.py). No return data is copied, so a recipient cannot make the settler pay for a huge revert payload.
            assembly ("memory-safe") {
                ok := call(ETH_PUSH_GAS, to, amount, 0, 0, 0, 0)
            }
        } else {
            ok = _tryTokenPush(token, to, amount);
        }
        if (!ok) {
            owed[to] += amount;
            emit PaymentDeferred(to, amount);
        }
    }
}
