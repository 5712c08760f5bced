"""The Merkle tree of a campaign's log, read from its seals, against signed checkpoints:
signing one, checking the log still matches every one, and proving one event is in one.

The leaves are the events' chain hashes, never their contents: a proof shows a row was recorded
unaltered without showing anyone else's rows, and an erased expert's row still proves."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from core.ports import LastCheckpoint, Log, NoteVerifier, Signer
from core.provenance import merkle
from core.provenance.checkpoints import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    origin,
    parse_checkpoint,
    sign_checkpoint,
    split_note,
)

BATCH = 5000


class InclusionProof(BaseModel):
    """What `provenance prove` prints and `check-proof` checks offline. Hashes are lowercase
    hex, as the log shows them; the audit path runs from the leaf's sibling up (RFC 9162)."""

    campaign: str
    seq: int
    leaf_index: int  # seq - 1
    tree_size: int
    chain_hash: str
    audit_path: list[str]
    checkpoint: str  # the signed note, verbatim


async def chain_leaves(log: Log, campaign_id: str, size: int) -> list[bytes]:
    """The chain hashes of events 1..size, as 32 raw bytes each."""
    leaves: list[bytes] = []
    for start in range(1, size + 1, BATCH):
        seqs = list(range(start, min(start + BATCH, size + 1)))
        seals = await log.read_seals(campaign_id, seqs)
        for seq in seqs:
            if seq not in seals:
                raise CheckpointError(f"event {seq} has no seal (removed, or not sealed yet)")
            leaves.append(bytes.fromhex(seals[seq]))
    return leaves


async def new_checkpoint(log: Log, campaign_id: str, signer: Signer,
                         last: LastCheckpoint | None) -> tuple[int, str] | None:
    """A signed note of the sealed log, if it grew since the last one: (size, note)."""
    size = (await log.chain_head(campaign_id)).seq
    if size == 0 or (last is not None and last.size >= size):
        return None
    leaves = await chain_leaves(log, campaign_id, size)
    return size, sign_checkpoint(Checkpoint(origin(campaign_id), size, merkle.root(leaves)),
                                 signer)


async def check_checkpoints(log: Log, campaign_id: str, notes: Sequence[str],
                            verifier: NoteVerifier) -> int:
    """How many checkpoints the log still matches: all of them, or CheckpointError naming the
    first that fails and the events one of which changed after it was signed."""
    opened = sorted((open_checkpoint(note, campaign_id, verifier) for note in notes),
                    key=lambda checkpoint: checkpoint.size)
    if not opened:
        raise CheckpointError(f"no checkpoint of {origin(campaign_id)} in the file")
    sealed = (await log.chain_head(campaign_id)).seq
    largest = opened[-1].size
    if largest > sealed:
        raise CheckpointError(f"checkpoint of size {largest} covers events the log no longer "
                              f"holds: {sealed} sealed (events removed)")
    leaves = await chain_leaves(log, campaign_id, largest)
    heads = merkle.roots_at(leaves, [checkpoint.size for checkpoint in opened])
    good = 0
    for checkpoint in opened:
        if heads[checkpoint.size] != checkpoint.root:
            raise CheckpointError(_mismatch(good, checkpoint.size))
        good = checkpoint.size
    return len(opened)


def _mismatch(good: int, size: int) -> str:
    """Only roots are signed, so the change is placed between two checkpoints' sizes."""
    where = f"event {size}" if good + 1 == size else f"one of events {good + 1}..{size}"
    return (f"the log does not match the checkpoint of size {size}: {where} was changed "
            f"after it was signed, and the chain resealed")


async def prove(log: Log, campaign_id: str, chain_hash: str,
                notes: Sequence[str]) -> InclusionProof | int:
    """The proof of the event with this chain hash against the latest checkpoint covering it,
    or the event's seq when no checkpoint covers it yet."""
    sealed = (await log.chain_head(campaign_id)).seq
    leaves = await chain_leaves(log, campaign_id, sealed)
    try:
        index = leaves.index(bytes.fromhex(chain_hash))
    except ValueError:
        raise CheckpointError(f"no sealed event of {campaign_id} has the hash {chain_hash}") \
            from None
    covering = [(checkpoint, note) for checkpoint, note in _parsed(notes, campaign_id)
                if index < checkpoint.size <= sealed]
    if not covering:
        return index + 1
    checkpoint, note = max(covering, key=lambda found: found[0].size)
    tree = leaves[:checkpoint.size]
    if merkle.root(tree) != checkpoint.root:
        raise CheckpointError(f"the log no longer matches the checkpoint of size "
                              f"{checkpoint.size}; run provenance verify with --checkpoints")
    return InclusionProof(campaign=campaign_id, seq=index + 1, leaf_index=index,
                          tree_size=checkpoint.size, chain_hash=chain_hash.lower(),
                          audit_path=[h.hex() for h in merkle.inclusion_proof(index, tree)],
                          checkpoint=note)


def _parsed(notes: Sequence[str], campaign_id: str) -> list[tuple[Checkpoint, str]]:
    found = [(parse_checkpoint(split_note(note)[0]), note) for note in notes]
    return [(checkpoint, note) for checkpoint, note in found
            if checkpoint.origin == origin(campaign_id)]


def check_proof(proof: InclusionProof, verifier: NoteVerifier) -> Checkpoint:
    """Offline: the note is signed by this key for the proof's campaign, and the event's chain
    hash is leaf `leaf_index` of the tree whose root it signed."""
    checkpoint = open_checkpoint(proof.checkpoint, proof.campaign, verifier)
    if checkpoint.size != proof.tree_size:
        raise CheckpointError(f"the proof is for a tree of {proof.tree_size}, the checkpoint "
                              f"signed {checkpoint.size}")
    try:
        leaf = bytes.fromhex(proof.chain_hash)
        path = [bytes.fromhex(h) for h in proof.audit_path]
    except ValueError:
        raise CheckpointError("the proof's hashes are not hex") from None
    if not merkle.verify_inclusion(proof.leaf_index, proof.tree_size, leaf, path,
                                   checkpoint.root):
        raise CheckpointError(f"event {proof.seq} is not in the tree of size "
                              f"{checkpoint.size} that the checkpoint signed")
    return checkpoint
