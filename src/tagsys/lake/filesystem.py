"""Opening the lake's root with pyarrow.fs: a local folder or an S3 bucket/prefix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from tagsys.errors import LakeError

S3_SCHEMES = ("s3", "s3a", "s3n")


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible store. Unset values fall back to the AWS default chain."""

    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"S3Options(endpoint={self.endpoint!r}, region={self.region!r})"


@dataclass(frozen=True)
class LakeRoot:
    """The lake root as two views: a pyarrow filesystem + path, and the URI Spark reads."""

    uri: str
    filesystem: pafs.FileSystem
    path: str

    def fs_path(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts])

    def uri_of(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *parts])

    def uri_for(self, fs_path: str) -> str:
        """The URI of a filesystem path under the root (for messages and for Spark)."""
        if not fs_path.startswith(self.path):
            return fs_path
        relative = fs_path[len(self.path) :].strip("/")
        return self.uri_of(relative) if relative else self.uri


def is_s3(uri: str) -> bool:
    """s3:// or s3a:// (as `s3:x` is a relative local path, so is it here)."""
    scheme = urlparse(uri).scheme
    return scheme in S3_SCHEMES and uri[len(scheme) :].startswith("://")


def open_root(uri: str, s3: S3Options | None = None) -> LakeRoot:
    """Open `uri` (local path, file://, s3://, s3a://); raise LakeError if it cannot be listed."""
    if is_s3(uri):
        parsed = urlparse(uri)
        path = f"{parsed.netloc}{parsed.path}".rstrip("/")
        return LakeRoot(
            uri=uri.rstrip("/"), filesystem=_s3_filesystem(s3 or S3Options()), path=path
        )
    local = Path(urlparse(uri).path if uri.startswith("file:") else uri).expanduser().resolve()
    return LakeRoot(uri=str(local), filesystem=pafs.LocalFileSystem(), path=str(local))


def _s3_filesystem(options: S3Options) -> pafs.S3FileSystem:
    kwargs: dict[str, str] = {}
    if options.endpoint:
        parsed = urlparse(options.endpoint if "//" in options.endpoint else f"//{options.endpoint}")
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        if parsed.scheme:
            kwargs["scheme"] = parsed.scheme
    if options.region:
        kwargs["region"] = options.region
    try:
        return pafs.S3FileSystem(
            access_key=options.access_key,
            secret_key=options.secret_key,
            session_token=options.session_token,
            **kwargs,
        )
    except (OSError, ValueError) as exc:
        raise LakeError(
            f"cannot set up S3 access ({options!r}): {exc}; check the S3 endpoint and credentials"
        ) from exc


def is_hidden(name: str) -> bool:
    """Files and folders Spark and Hive ignore: `_SUCCESS`, `_temporary`, `.part-0.crc`, ..."""
    return name.startswith(("_", ".")) or name.endswith(".crc")


def list_dir(root: LakeRoot, path: str) -> list[pafs.FileInfo]:
    """Visible entries of one folder, sorted by name; LakeError if it is missing or unreadable."""
    try:
        infos = root.filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
    except FileNotFoundError as exc:
        raise LakeError(
            f"lake folder '{root.uri_for(path)}' does not exist; check the lake root setting "
            "(lake_uri) or generate demo data"
        ) from exc
    except OSError as exc:
        raise LakeError(
            f"cannot list lake folder '{root.uri_for(path)}': {exc}; check that it exists "
            "and that the credentials allow listing it"
        ) from exc
    return sorted((i for i in infos if not is_hidden(i.base_name)), key=lambda i: i.base_name)
