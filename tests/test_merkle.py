"""The RFC 6962 tree: roots against the reference vector and the RFC's recursive definition,
and inclusion proofs that verify for every leaf and fail for any other data or path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.provenance.merkle import (
    EMPTY_ROOT,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_inclusion,
)

# The eight leaves of RFC 6962's reference tests (certificate-transparency, transparency-dev).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962, 2.1: MTH split at the largest power of two below the size."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def test_the_root_of_the_reference_leaves() -> None:
    assert root(LEAVES).hex() == ROOT_8
    assert root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_leaf_proves_against_the_reference_root(leaves: list[bytes],
                                                      data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(index, leaves)
    head = reference_root(leaves)

    assert root(leaves) == head
    assert verify_inclusion(index, len(leaves), leaves[index], proof, head)
    assert not verify_inclusion(index, len(leaves), leaves[index] + b"!", proof, head)
    assert not verify_inclusion(len(leaves), len(leaves), leaves[index], proof, head)
    if proof:
        assert not verify_inclusion(index, len(leaves), leaves[index], proof[:-1], head)
