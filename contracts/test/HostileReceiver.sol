// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Test-only contract party (provider or customer) with a hostile `receive`.
/// @notice `exec` lets the test act as this contract (fund, post a bond, withdraw). On receiving ETH it
/// accepts, re-enters `target` with the stored calldata (then accepts and records the callback's revert
/// selector, or refuses by bubbling it), burns all gas, or reverts.
/// The agreement pushes ETH with only 30,000 gas, too little to read kilobytes of calldata from storage,
/// so the re-entry calldata lives in the code of a data contract and is read with one EXTCODECOPY.
contract HostileReceiver {
    enum Mode {
        Accept,
        ReenterAndRecord,
        ReenterAndRefuse,
        BurnGas,
        Refuse
    }

    error Refused();

    // Packed into one slot so `receive` can read and update them within the push stipend.
    address public target;
    Mode public mode;
    bytes4 public lastReentryError;
    bool public reentrySucceeded;
    address public dataPointer;

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function setReentry(address target_, bytes calldata data) external {
        target = target_;
        // Creation code: PUSH2 len DUP1 PUSH1 10 RETURNDATASIZE CODECOPY RETURNDATASIZE RETURN, then the data.
        bytes memory init = abi.encodePacked(hex"61", uint16(data.length), hex"80600a3d393df3", data);
        address pointer;
        assembly {
            pointer := create(0, add(init, 32), mload(init))
        }
        require(pointer != address(0), "data contract not created");
        dataPointer = pointer;
    }

    function exec(address to, bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = to.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }

    receive() external payable {
        Mode m = mode;
        if (m == Mode.Accept) return;
        if (m == Mode.Refuse) revert Refused();
        if (m == Mode.BurnGas) {
            while (true) {}
        }
        (bool ok, bytes memory result) = target.call(dataPointer.code);
        if (m == Mode.ReenterAndRefuse) {
            if (!ok) {
                assembly {
                    revert(add(result, 32), mload(result))
                }
            }
            return;
        }
        reentrySucceeded = ok;
        if (!ok && result.length >= 4) lastReentryError = bytes4(result);
    }
}
