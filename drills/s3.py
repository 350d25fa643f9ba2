"""The S3 edge: streamed multipart uploads with a SHA-256 per object, hashed downloads, listing and
deletion. Server-side encryption is requested on every write."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from drills.errors import DrillsError, Exit
from drills.manifest import StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024  # S3 wants >= 5 MiB parts except the last; 16 MiB keeps 1 GB under 100 parts
# S3 may take minutes to assemble a large object (it sends keep-alive whitespace meanwhile; moto sends
# nothing): CompleteMultipartUpload waits this long for its answer, every other call 60 s.
ASSEMBLY_READ_TIMEOUT = 900
Progress = Callable[[int], None]


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = "tradeops"
    endpoint: str | None = None
    region: str = "us-east-1"
    sse: str | None = "AES256"  # "AES256", "aws:kms" or None (for stores that do not support it)
    kms_key_id: str | None = None


class S3Store:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = self._client(read_timeout=60)
        self.assembler = self._client(read_timeout=ASSEMBLY_READ_TIMEOUT)

    def _client(self, read_timeout: int) -> S3Client:
        return boto3.client(
            "s3", endpoint_url=self.settings.endpoint, region_name=self.settings.region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5,
                          read_timeout=read_timeout))

    def close(self) -> None:
        self.client.close()
        self.assembler.close()

    def __enter__(self) -> S3Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sse(self) -> dict[str, Any]:
        if self.settings.sse is None:
            return {}
        args: dict[str, Any] = {"ServerSideEncryption": self.settings.sse}
        if self.settings.kms_key_id:
            args["SSEKMSKeyId"] = self.settings.kms_key_id
        return args

    def upload_stream(self, key: str, stream: IO[bytes], progress: Progress | None = None,
                      part_size: int = PART_SIZE) -> StoredObject:
        """Read `stream` to its end in parts, hashing as it goes; the object appears only when complete
        (an aborted upload leaves nothing behind)."""
        with _errors(f"upload s3://{self.bucket}/{key}"):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._sse())["UploadId"]
            digest, size = hashlib.sha256(), 0
            parts: list[CompletedPartTypeDef] = []
            try:
                while True:
                    chunk = _read_full(stream, part_size)
                    if not chunk and parts:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    number = len(parts) + 1
                    etag = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   PartNumber=number, Body=chunk)["ETag"]
                    parts.append({"ETag": etag, "PartNumber": number})
                    if progress is not None:
                        progress(len(chunk))
                    if len(chunk) < part_size:
                        break
                self._complete(key, upload_id, parts, size)
            except BaseException as error:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except ClientError as abort_error:  # the upload's own error says what went wrong, not this
                    log.warning("aborting upload %s failed after %r: %s", key, error, abort_error)
                raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def _complete(self, key: str, upload_id: str, parts: list[CompletedPartTypeDef], size: int) -> None:
        """Assemble the parts. A retried CompleteMultipartUpload whose first attempt did assemble the object
        (its answer lost or timed out) fails, as the upload is gone: the object is then there with the parts'
        multipart ETag and size, and that is success."""
        try:
            self.assembler.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                     MultipartUpload={"Parts": parts})
        except ClientError as error:
            if not self._assembled(key, parts, size):
                raise
            log.warning("completing %s failed (%s) but an earlier attempt had assembled it: kept", key, error)

    def _assembled(self, key: str, parts: list[CompletedPartTypeDef], size: int) -> bool:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return head.get("ETag", "").strip('"') == multipart_etag(parts) and head.get("ContentLength") == size

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> StoredObject:
        """One object in one request, its SHA-256 kept in the object's metadata too."""
        digest = hashlib.sha256(data).hexdigest()
        with _errors(f"upload s3://{self.bucket}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                   Metadata={"sha256": digest}, **self._sse())
        return StoredObject(key=key, size=len(data), sha256=digest)

    def get_bytes(self, key: str) -> bytes:
        with _errors(f"read s3://{self.bucket}/{key}"):
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, key: str, sink: IO[bytes] | None, progress: Progress | None = None) -> tuple[int, str]:
        """Stream an object into `sink` (or nowhere, only hashing); returns (size, sha256)."""
        with _errors(f"read s3://{self.bucket}/{key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            digest, size = hashlib.sha256(), 0
            try:
                for chunk in body.iter_chunks(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
                    if sink is not None:
                        sink.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            finally:
                body.close()
        return size, digest.hexdigest()

    def metadata(self, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None when there is no such object."""
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key).get("Metadata", {}))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _translate(error, f"head s3://{self.bucket}/{key}") from None
        except BotoCoreError as error:
            raise _translate(error, f"head s3://{self.bucket}/{key}") from None

    def objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`."""
        with _errors(f"list s3://{self.bucket}/{prefix}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], item["Size"]

    def delete(self, keys: list[str]) -> None:
        with _errors(f"delete from s3://{self.bucket}"):
            for start in range(0, len(keys), 1000):
                batch: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[start:start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})


def multipart_etag(parts: list[CompletedPartTypeDef]) -> str:
    """The ETag S3 gives an object assembled from these parts: MD5 of the parts' MD5s, then "-" and the count."""
    digests = b"".join(bytes.fromhex(part["ETag"].strip('"')) for part in parts)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _read_full(stream: IO[bytes], size: int) -> bytes:
    """Up to `size` bytes: pipes return short reads, parts must be full except the last."""
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _translate(error: Exception, what: str) -> DrillsError:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return DrillsError(Exit.NOT_FOUND, f"{what}: no such object")
        if code == "NoSuchBucket":
            return DrillsError(Exit.NOT_FOUND, f"{what}: no such bucket")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return DrillsError(Exit.UNREACHABLE, f"{what}: access denied ({code})")
        return DrillsError(Exit.ERROR, f"{what}: {code}: {error}")
    if isinstance(error, EndpointConnectionError):
        return DrillsError(Exit.UNREACHABLE, f"{what}: S3 endpoint unreachable ({error})")
    return DrillsError(Exit.UNREACHABLE, f"{what}: {error}")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise _translate(error, what) from None
