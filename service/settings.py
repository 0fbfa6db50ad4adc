"""Service settings: command-line flags or environment variables (prefix TRICL_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be told; e.g. TRICL_INDEX=/data/index python -m service."""

    model_config = SettingsConfigDict(env_prefix="TRICL_", env_ignore_empty=True)

    index: Path = Field(Path("index"), description="index directory written by the indexer")
    gallery: Path | None = Field(
        None, description="gallery folder for images and thumbnails; default: the one indexed"
    )
    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 for every one")
    port: int = Field(8000, ge=1, le=65535, description="port to listen on")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="processes serving the port; each holds its own float ladder (docs/design.md)",
    )
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="larger uploads get 413")
    max_batch_files: int = Field(
        64, ge=1, le=1024, description="most images one POST /search/batch takes"
    )
    max_batch_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="larger POST /search/batch bodies get 413"
    )
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="width x height above this is refused"
    )
    max_top_k: int = Field(1000, gt=0, description="largest top_k a request may ask for")
    budget_cache_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="memory for budgets outside the ladder of powers of two, built on first use",
    )
    embed_max_batch: int = Field(
        64, ge=1, le=1024, description="images of a POST /search/batch per forward pass"
    )
    max_shortlist: int = Field(10_000, gt=0, description="largest re-ranking shortlist")
    max_in_flight: int = Field(
        64,
        ge=1,
        description="searches handled at once; more are answered 503 with Retry-After at once "
        "instead of queueing without bound",
    )
    shutdown_grace_s: float = Field(
        20, gt=0, description="on SIGTERM, how long requests in progress may take to finish"
    )
    api_key: str | None = Field(
        None, min_length=1, description="if set, search and gallery routes need X-API-Key"
    )
    admin_key: str | None = Field(
        None, min_length=1, description="admin routes (reload) are off unless this is set"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='origins allowed to call from a browser, e.g. ["https://a.b"]',
    )
