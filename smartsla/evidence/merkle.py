"""The one Merkle tree of the evidence: keccak, pairs hashed sorted (as OpenZeppelin's MerkleProof), an
odd last node moved up unchanged; levels, root, proofs and their check."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sha3

from smartsla.encoding import to_hex
from smartsla.evidence.format import EvidenceError, hour_iso


def keccak(data) -> bytes:
    # safe-pysha3 directly: eth_utils.keccak costs ~15 us a call in dispatch, 8x the hash of a tree node
    return sha3.keccak_256(data).digest()


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a <= b else b + a)


def _levels(leaves: list[bytes]) -> Iterator[list[bytes]]:
    """The tree's levels, leaves first, root last: the one place the tree's shape is decided."""
    level = list(leaves)
    if not level:
        raise EvidenceError("a tree needs at least one leaf")
    yield level
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:  # an odd last node moves up unchanged
            nxt.append(level[-1])
        level = nxt
        yield level


def tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """All levels, leaves first, root last (for proofs and v1's tree.json)."""
    return list(_levels(leaves))


def merkle_root(leaves: list[bytes]) -> bytes:
    """The root of :func:`tree_levels`, keeping one level at a time."""
    for level in _levels(leaves):
        pass
    return level[0]


def proof_from_levels(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(leaf: bytes, proof: Iterable[bytes], root: bytes) -> bool:
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


@dataclass(frozen=True)
class Proof:
    service: str
    hour_start: int
    leaf: bytes
    siblings: list[bytes]
    root: bytes

    def to_json(self) -> dict:
        return {"service": self.service, "hour_start": self.hour_start, "hour": hour_iso(self.hour_start),
                "leaf": to_hex(self.leaf), "proof": [to_hex(s) for s in self.siblings], "root": to_hex(self.root),
                "valid": verify_proof(self.leaf, self.siblings, self.root)}
