"""RFC 6962's Merkle tree over a campaign's log: one leaf per event, its chain hash (32 bytes),
indices from 0. A signed checkpoint names the tree's size and root; an inclusion proof shows one
event is in it, with log2(size) hashes and nothing else of the log (RFC 9162, section 2.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of these leaves (their data, not yet hashed)."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(leaf) for leaf in leaves]
    while len(level) > 1:
        level = _up(level)
    return level[0]


def _up(level: list[bytes]) -> list[bytes]:
    """One level up: pairs hashed together, an odd last node carried up as it is, which builds
    the same tree as RFC 6962's split at the largest power of two below the size."""
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    return paired + level[-1:] if len(level) % 2 else paired


def roots_at(leaves: Sequence[bytes], sizes: Sequence[int]) -> dict[int, bytes]:
    """The tree heads at several sizes in one pass over the leaves: the peaks of the perfect
    subtrees so far (a stack), folded right to left at each size asked for. Checking many
    checkpoints then costs one tree, not one per checkpoint."""
    wanted = set(sizes)
    heads = {0: EMPTY_ROOT} if 0 in wanted else {}
    peaks: list[tuple[int, bytes]] = []  # (height, hash), left to right
    for count, leaf in enumerate(leaves, start=1):
        node, height = leaf_hash(leaf), 0
        while peaks and peaks[-1][0] == height:
            node, height = node_hash(peaks.pop()[1], node), height + 1
        peaks.append((height, node))
        if count in wanted:
            head = peaks[-1][1]
            for _, peak in reversed(peaks[:-1]):
                head = node_hash(peak, head)
            heads[count] = head
    return heads


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf `index` in the tree of these leaves, leaf level first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    proof = []
    level = [leaf_hash(leaf) for leaf in leaves]
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
        level = _up(level)
    return proof


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """Whether `leaf` (its data) is leaf `index` of the tree of `size` with this root
    (RFC 9162, 2.1.3.2)."""
    return verify_leaf_hash(index, size, leaf_hash(leaf), proof, expected_root)


def verify_leaf_hash(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """The same, from the leaf's hash: the form published test vectors take."""
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == expected_root
