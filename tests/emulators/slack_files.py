"""Slack's files, as the emulator keeps them: the external upload flow and the readiness a
message's image needs.

The flow (https://docs.slack.dev/reference/methods/files.getUploadURLExternal): the method
gives an `upload_url` and a `file_id`; the app POSTs the bytes there (raw, or one multipart
part) and gets HTTP 200; `files.completeUploadExternal` with `files: [{id, title}]` (and
optionally `channel_id`) finishes it. Slack then processes the file asynchronously (a malware
scan, slackapi/node-slack-sdk#2040): until that is done `files.info` shows no `mimetype`, and an
image block naming the file is refused with `invalid slack file` (slackapi/python-slack-sdk#1658,
#1797). Here a completed file becomes ready `ready_after_s` later. Only png, jpg, jpeg and gif
files may be shown in an image block (the slack file object's reference)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.emulators.block_kit import slack_files_of

Json = dict[str, Any]
ALT_TXT_MOST = 1000  # files.getUploadURLExternal: alt_txt_too_large
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg",
               b"GIF87a": "image/gif", b"GIF89a": "image/gif"}


@dataclass
class SlackFile:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    data: bytes | None = None  # what the upload POST carried
    title: str | None = None
    completed_at: float | None = None  # monotonic; None until files.completeUploadExternal
    channels: list[str] = field(default_factory=list)

    @property
    def mimetype(self) -> str:
        return next((kind for magic, kind in IMAGE_TYPES.items()
                     if (self.data or b"").startswith(magic)), "application/octet-stream")


@dataclass
class SlackFiles:
    ready_after_s: float = 0.3
    files: dict[str, SlackFile] = field(default_factory=dict)
    uploads: list[bytes] = field(default_factory=list)  # every upload POST's bytes, in order
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def received(self, file_id: str) -> bytes:
        """The bytes the app uploaded for this file."""
        data = self.files[file_id].data
        assert data is not None, f"nothing was uploaded for {file_id}"
        return data

    def ready(self, file_id: str) -> bool:
        held = self.files.get(file_id)
        return bool(held and held.completed_at is not None and
                    time.monotonic() >= held.completed_at + self.ready_after_s)

    def get_upload_url(self, args: Json, root: str) -> Json:
        length = int(args.get("length") or 0)
        if not args.get("filename") or length <= 0:
            return {"ok": False, "error": "missing_argument"}
        if len(str(args.get("alt_txt") or "")) > ALT_TXT_MOST:
            return {"ok": False, "error": "alt_txt_too_large"}
        file_id = f"F{next(self._ids):010d}"
        self.files[file_id] = SlackFile(file_id, str(args["filename"]), length,
                                        args.get("alt_txt"))
        return {"ok": True, "upload_url": f"{root}/upload/v1/{file_id}", "file_id": file_id}

    async def upload(self, request: web.Request) -> web.Response:
        """The upload URL: raw bytes or a multipart form's one file; 200 when taken."""
        held = self.files.get(request.match_info["file_id"])
        if held is None:
            return web.Response(status=404, text="Not Found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()))
            data = part.file.read() if isinstance(part, web.FileField) else str(part).encode()
        else:
            data = await request.read()
        held.data = data
        self.uploads.append(data)
        return web.Response(text=f"OK - {len(data)}")

    def complete(self, args: Json) -> Json:
        wanted = args.get("files")
        wanted = json.loads(wanted) if isinstance(wanted, str) else wanted
        if not wanted:
            return {"ok": False, "error": "invalid_arguments"}
        held = [self.files.get(str(f.get("id"))) for f in wanted]
        if any(f is None or f.data is None for f in held):
            return {"ok": False, "error": "file_not_found"}
        channel = args.get("channel_id")
        for entry, done in zip(wanted, held, strict=True):
            assert done is not None
            done.title, done.completed_at = entry.get("title") or done.filename, time.monotonic()
            done.channels = [channel] if channel else []
        return {"ok": True, "files": [self.shown(f) for f in held if f is not None]}

    def info(self, args: Json) -> Json:
        held = self.files.get(str(args.get("file")))
        if held is None or held.completed_at is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self.shown(held)}

    def shown(self, held: SlackFile) -> Json:
        """Slack's file object; `mimetype` stays empty until the file is processed."""
        ready = self.ready(held.id)
        return {"id": held.id, "name": held.filename, "title": held.title,
                "mimetype": held.mimetype if ready else "", "size": len(held.data or b""),
                "alt_txt": held.alt_txt, "channels": held.channels, "is_public": False,
                "url_private": f"https://files.slack.com/files-pri/T0TEST-{held.id}/"
                               f"{held.filename}"}

    def refusals(self, blocks: list[Json]) -> list[str]:
        """An image naming a file this workspace does not hold, or holds but has not yet
        processed, or that is no image Slack shows: `invalid slack file`."""
        return [f"invalid slack file [json-pointer:{at}]" for at, named in slack_files_of(blocks)
                if not self._showable(named)]

    def _showable(self, named: Json) -> bool:
        held = self.files.get(str(named.get("id")))
        if held is None and "url" in named:
            held = next((f for f in self.files.values()
                         if self.shown(f)["url_private"] == named["url"]), None)
        return held is not None and self.ready(held.id) and held.mimetype in IMAGE_TYPES.values()
