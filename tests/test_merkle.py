"""The RFC 6962 tree: roots against the reference vector and the RFC's recursive definition,
and inclusion proofs that verify for every leaf and fail for any other data or path."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from core.provenance.merkle import (
    EMPTY_ROOT,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    roots_at,
    verify_inclusion,
    verify_leaf_hash,
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
    sizes = sorted({1, index + 1, len(leaves)})
    assert roots_at(leaves, sizes) == {n: reference_root(leaves[:n]) for n in sizes}
    assert verify_inclusion(index, len(leaves), leaves[index], proof, head)
    assert not verify_inclusion(index, len(leaves), leaves[index] + b"!", proof, head)
    assert not verify_inclusion(len(leaves), len(leaves), leaves[index], proof, head)
    if proof:
        assert not verify_inclusion(index, len(leaves), leaves[index], proof[:-1], head)


# A few inclusion vectors from transparency-dev/merkle, testdata/inclusion/ (commit 417fb0c3):
# directories 1, 2 and 4, over the reference leaves above. Hashes as published, in base64.
VECTORS = [  # (leaf index, tree size, root, leaf hash, audit path, valid)
    (0, 8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
     "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
     ["lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
      "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
      "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="], True),
    (5, 8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
     "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
     ["vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
      "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
      "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc="], True),
    (1, 5, "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
     "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
     ["bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
      "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
      "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="], True),
]
FIVE = VECTORS[2]
BAD = [  # directory 4's refusals: treeSize-mul-@2, leafIdx-plus-@1, removed-component, wrong-leaf
    (1, 10, *FIVE[2:5]), (2, 5, *FIVE[2:5]), (1, 5, FIVE[2], FIVE[3], FIVE[4][:2]),
    (1, 5, FIVE[2], "V3JvbmdMZWFm", FIVE[4])]


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def test_published_inclusion_vectors() -> None:
    for index, size, head, leaf, path, _ in VECTORS:
        leaves = LEAVES[:size]
        assert leaf_hash(leaves[index]) == _b(leaf)
        assert root(leaves) == _b(head)
        assert inclusion_proof(index, leaves) == [_b(h) for h in path]
        assert verify_leaf_hash(index, size, _b(leaf), [_b(h) for h in path], _b(head))
    for index, size, head, leaf, path in BAD:
        assert not verify_leaf_hash(index, size, _b(leaf), [_b(h) for h in path], _b(head))
