"""Signed checkpoints of a campaign's log, in the formats Go's checksum database and
transparency-dev's logs use, so their tools and auditors read ours:

- the note text is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the origin
  `expertloop/<campaign>`, the tree size in decimal and the base64 RFC 6962 root, a line each;
- it is wrapped in a C2SP signed-note (https://c2sp.org/signed-note): the text, a blank line,
  then `— <key name> <base64(key ID || signature)>`. The key name is the origin, as
  tlog-checkpoint recommends, so one Ed25519 key signs every campaign under its own name.

A checkpoints file holds the notes one after another, each followed by a blank line. Neither a
checkpoint's text nor its signature lines may hold an empty line, so the framing is unambiguous.
Only the text format lives here; signing is behind the `Signer` and `NoteVerifier` ports."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import NamedTuple

from core.ports import NoteVerifier, Signer

ED25519 = b"\x01"  # signed-note's signature type byte for Ed25519
DASH = "\u2014"  # em dash, which opens every signature line


class CheckpointError(Exception):
    """A note that is not a well-formed, validly signed checkpoint of the campaign asked about."""


class Checkpoint(NamedTuple):
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def origin(campaign_id: str) -> str:
    return f"expertloop/{campaign_id}"


def key_id(name: str, public_key: bytes) -> bytes:
    """signed-note: SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note of a checkpoint, under the key name that is its origin."""
    text = checkpoint.text()
    name = checkpoint.origin
    blob = key_id(name, signer.public_key()) + signer.sign(text.encode())
    return f"{text}\n{DASH} {name} {base64.b64encode(blob).decode()}\n"


def open_checkpoint(note: str, campaign_id: str, verifier: NoteVerifier) -> Checkpoint:
    """The checkpoint a note carries, once its signature by this key and its origin hold."""
    text, signatures = split_note(note)
    checkpoint = parse_checkpoint(text)
    if checkpoint.origin != origin(campaign_id):
        raise CheckpointError(f"checkpoint of size {checkpoint.size} is for "
                              f"{checkpoint.origin!r}, not {origin(campaign_id)!r}")
    wanted = key_id(checkpoint.origin, verifier.public_key())
    ours = [sig for name, sig in signatures if name == checkpoint.origin and sig[:4] == wanted]
    if not ours:  # signed-note: signatures by unknown keys are ignored, none known is a reject
        raise CheckpointError(f"checkpoint of size {checkpoint.size} is not signed by this key")
    if not all(verifier.verify(text.encode(), sig[4:]) for sig in ours):
        raise CheckpointError(f"checkpoint of size {checkpoint.size}: bad signature")
    return checkpoint


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A signed note's text (with its final newline) and its (key name, signature) lines."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise CheckpointError("not a signed note: no blank line before its signatures")
    signatures = [_signature(line) for line in block[:-1].split("\n")]
    return text + "\n", signatures


def _signature(line: str) -> tuple[str, bytes]:
    dash, _, rest = line.partition(" ")
    name, _, encoded = rest.partition(" ")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        blob = b""
    if dash != DASH or not name or len(blob) < 5:
        raise CheckpointError(f"not a signature line: {line[:40]!r}")
    return name, blob


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
        raise CheckpointError("a checkpoint is three or more non-empty lines")
    name, size, encoded = lines[:3]
    if not size.isdigit() or (size.startswith("0") and size != "0"):
        raise CheckpointError(f"not a tree size: {size[:20]!r}")
    try:
        root = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise CheckpointError(f"not a base64 root hash: {encoded[:60]!r}") from exc
    if len(root) != 32:
        raise CheckpointError("a root hash is 32 bytes")
    return Checkpoint(name, int(size), root)


def read_notes(framed: str) -> list[str]:
    """The notes of a checkpoints file, in the order they were appended."""
    chunks = framed.split("\n\n")
    if chunks[-1].strip():
        raise CheckpointError("a checkpoints file ends with a blank line after each note")
    pairs = chunks[:-1]
    if len(pairs) % 2:
        raise CheckpointError("a checkpoints file holds whole notes: text, blank line, "
                              "signatures, blank line")
    return [f"{pairs[i]}\n\n{pairs[i + 1]}\n" for i in range(0, len(pairs), 2)]


def frame(note: str) -> str:
    """A note as appended to a checkpoints file."""
    return note + "\n"
