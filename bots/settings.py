"""Every setting expertloop reads from the environment, in one pydantic-settings model."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.service.archiving import ArchiveSettings
from core.service.drafting import DraftingSettings
from core.service.health import Backoff


class Settings(BaseSettings):
    """A channel whose token is absent is simply off."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path("./var"), alias="EXPERTLOOP_DATA_DIR")
    port: int = Field(default=8080, alias="PORT")
    host: str = Field(default="127.0.0.1", alias="EXPERTLOOP_HOST")
    api_token: SecretStr | None = Field(default=None, alias="EXPERTLOOP_API_TOKEN")
    base_url: str | None = Field(default=None, alias="EXPERTLOOP_BASE_URL")
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_push_interval_s: float = Field(default=30.0, gt=0,
                                         alias="EXPERTLOOP_SLACK_PUSH_INTERVAL")
    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: SecretStr | None = Field(default=None,
                                                      alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_url: str = Field(default="https://api.telegram.org/bot",
                                  alias="TELEGRAM_API_URL")
    max_body: int = Field(default=16 << 20, gt=0, alias="EXPERTLOOP_MAX_BODY")
    worker_interval_s: float = Field(default=1.0, gt=0, alias="EXPERTLOOP_WORKER_INTERVAL")
    telegram_push_interval_s: float = Field(default=30.0, gt=0,
                                            alias="EXPERTLOOP_TELEGRAM_PUSH_INTERVAL")
    agreement_interval_s: float = Field(default=300.0, gt=0,
                                        alias="EXPERTLOOP_AGREEMENT_INTERVAL")

    # Redis replication: how many replicas must hold an answer before it is acknowledged (0:
    # Redis's asynchronous copy), and how long to wait for them (docs/deploy.md, "Failover").
    replica_acks: int = Field(default=0, ge=0, alias="EXPERTLOOP_REPLICA_ACKS")
    replica_ack_ms: int = Field(default=1000, gt=0, alias="EXPERTLOOP_REPLICA_ACK_MS")

    channel_retry_s: float = Field(default=2.0, gt=0, alias="EXPERTLOOP_CHANNEL_RETRY_S")
    channel_retry_max_s: float = Field(default=60.0, gt=0,
                                       alias="EXPERTLOOP_CHANNEL_RETRY_MAX_S")

    # Signed checkpoints of the provenance log (docs/architecture.md, "Checkpoints and proofs").
    signing_key: Path | None = Field(default=None, alias="EXPERTLOOP_SIGNING_KEY")
    checkpoint_minutes: float = Field(default=10.0, gt=0, alias="EXPERTLOOP_CHECKPOINT_MINUTES")

    # The archive of sealed log segments (docs/deploy.md, "Sharing the archive"): a directory or
    # an fsspec URL; a segment rolls at so many events or seconds; Redis keeps the hot tail.
    archive: str | None = Field(default=None, alias="EXPERTLOOP_ARCHIVE")
    segment_events: int = Field(default=100_000, gt=0, alias="EXPERTLOOP_SEGMENT_EVENTS")
    segment_seconds: float = Field(default=3600.0, gt=0, alias="EXPERTLOOP_SEGMENT_SECONDS")
    hot_tail_events: int = Field(default=10_000, ge=0, alias="EXPERTLOOP_HOT_TAIL_EVENTS")

    # Drafting (a campaign's `drafting` models): how patient the worker is with an endpoint.
    model_timeout_s: float = Field(default=120.0, gt=0, alias="EXPERTLOOP_MODEL_TIMEOUT_S")
    model_tries: int = Field(default=3, ge=1, alias="EXPERTLOOP_MODEL_TRIES")
    model_backoff_s: float = Field(default=1.0, ge=0, alias="EXPERTLOOP_MODEL_BACKOFF_S")
    model_most_wait_s: float = Field(default=60.0, gt=0, alias="EXPERTLOOP_MODEL_MOST_WAIT_S")
    model_most_waits: int = Field(default=10, ge=0, alias="EXPERTLOOP_MODEL_MOST_WAITS")
    drafting_poll_s: float = Field(default=0.5, gt=0, alias="EXPERTLOOP_DRAFTING_POLL_S")

    # Images (docs/architecture.md, "Images"): where their bytes live, the largest accepted on
    # import, and the hosts an image URL may name although they resolve to a private address.
    media: str | None = Field(default=None, alias="EXPERTLOOP_MEDIA")
    media_max_mb: float = Field(default=20.0, gt=0, alias="EXPERTLOOP_MEDIA_MAX_MB")
    fetch_hosts: str = Field(default="", alias="EXPERTLOOP_FETCH_HOSTS")
    fetch_timeout_s: float = Field(default=30.0, gt=0, alias="EXPERTLOOP_FETCH_TIMEOUT_S")

    # Live asks (docs/asks.md): the secret that signs callbacks (an ask with a callback is
    # refused without it), the hosts a callback URL may name although they resolve to a
    # loopback or private address, and how many asks one API token may post a minute.
    callback_secret: SecretStr | None = Field(default=None, alias="EXPERTLOOP_CALLBACK_SECRET")
    callback_hosts: str = Field(default="", alias="EXPERTLOOP_CALLBACK_HOSTS")
    asks_per_minute: int = Field(default=600, gt=0, alias="EXPERTLOOP_ASKS_PER_MINUTE")
    callback_timeout_s: float = Field(default=10.0, gt=0, alias="EXPERTLOOP_CALLBACK_TIMEOUT_S")

    def drafting(self) -> DraftingSettings:
        """The worker's drafting settings; a job's hold (how long before another worker may
        take it over) follows from the timeout, the tries and the longest wait."""
        return DraftingSettings(timeout_s=self.model_timeout_s, tries=self.model_tries,
                                backoff_s=self.model_backoff_s,
                                most_wait_s=self.model_most_wait_s,
                                most_waits=self.model_most_waits, poll_s=self.drafting_poll_s)

    def backoff(self) -> Backoff:
        """How a process waits for a platform that does not answer yet (doubling, capped)."""
        return Backoff(first_s=self.channel_retry_s,
                       most_s=max(self.channel_retry_s, self.channel_retry_max_s))

    def checkpoints_dir(self) -> Path:
        """Beside a local archive (a sibling `checkpoints/`), else under the data dir (an
        archive at an fsspec URL has no local sibling)."""
        if self.archive is not None and not _is_url(self.archive):
            return Path(self.archive.removeprefix("file://")).parent / "checkpoints"
        return self.data_dir / "checkpoints"

    def archive_location(self) -> str:
        """`EXPERTLOOP_ARCHIVE` (a directory or an fsspec URL), else `archive/` under the data
        dir."""
        return self.archive or str(self.data_dir / "archive")

    def archiving(self) -> ArchiveSettings:
        return ArchiveSettings(segment_events=self.segment_events,
                               segment_seconds=self.segment_seconds,
                               hot_tail=self.hot_tail_events)

    def media_location(self) -> str:
        """`EXPERTLOOP_MEDIA` (a directory or an fsspec URL), else `media/` under the data dir."""
        return self.media or str(self.data_dir / "media")

    def media_max_bytes(self) -> int:
        return int(self.media_max_mb * (1 << 20))

    def allowed_fetch_hosts(self) -> frozenset[str]:
        """`EXPERTLOOP_FETCH_HOSTS`: comma-separated host or host:port."""
        return frozenset(part.strip().lower() for part in self.fetch_hosts.split(",")
                         if part.strip())

    def allowed_callback_hosts(self) -> frozenset[str]:
        """`EXPERTLOOP_CALLBACK_HOSTS`: comma-separated host or host:port."""
        return frozenset(part.strip().lower() for part in self.callback_hosts.split(",")
                         if part.strip())

    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    def public_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")
