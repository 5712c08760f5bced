"""Checkpoints files: one per campaign, `<campaign>.checkpoints`, each signed note appended and
followed by a blank line (core/provenance/checkpoints.py, `frame`). Append-only and plain text,
so anyone can keep a copy and diff it against the next one they fetch."""

from __future__ import annotations

from pathlib import Path

from core.provenance.checkpoints import frame, read_notes


class NoteFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, campaign_id: str) -> Path:
        return self.directory / f"{campaign_id}.checkpoints"

    def append(self, campaign_id: str, note: str) -> Path:
        """One write of the whole framed note, in append mode, so a reader never sees half."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(campaign_id)
        with path.open("a", encoding="utf-8") as out:
            out.write(frame(note))
        return path

    def notes(self, campaign_id: str) -> list[str]:
        path = self.path(campaign_id)
        return read_notes(path.read_text(encoding="utf-8")) if path.exists() else []
