"""Ed25519 keys in PEM files, with `cryptography`: the Signer the worker signs checkpoints with
and the NoteVerifier an auditor checks them with. The private key lives in a file only
(EXPERTLOOP_SIGNING_KEY), never in Redis."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class KeyFileError(Exception):
    """A key file that is missing, unreadable, or not an Ed25519 key in PEM."""


class Ed25519Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key

    @classmethod
    def from_pem(cls, path: Path) -> Ed25519Signer:
        key = _load(path, serialization.load_pem_private_key, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(*RAW)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


class Ed25519Verifier:
    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key

    @classmethod
    def from_pem(cls, path: Path) -> Ed25519Verifier:
        key = _load(path, serialization.load_pem_public_key)
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key")
        return cls(key)

    @classmethod
    def from_raw(cls, public_key: bytes) -> Ed25519Verifier:
        return cls(Ed25519PublicKey.from_public_bytes(public_key))

    def public_key(self) -> bytes:
        return self.key.public_bytes(*RAW)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def write_key_pair(private_path: Path, public_path: Path) -> None:
    """A new key: the private half as PKCS#8 PEM, readable by its owner only (created 0600, so
    it is never readable by others even for a moment), the public half as SPKI PEM beside it.
    Refuses to overwrite either: a lost signing key cannot be recreated."""
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)


def _load(path: Path, loader, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return loader(path.read_bytes(), **kwargs)
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM key: {exc}") from exc
