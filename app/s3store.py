"""Photos as objects in an S3-compatible bucket (AWS, MinIO, ...): SNAPCLASS_BLOB_URL=s3://bucket/prefix.

boto3 reads the credentials, the region and the endpoint from the usual AWS_* settings (AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3 for a store other than AWS; botocore >= 1.31 reads them itself, so nothing is passed here).
Objects are named `<prefix>/<key[:2]>/<key>.<kind>.<ext>`, as the files are under the data dir.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.storage import ORIGINAL, blob_name

# See remove_orphans: what an upload that is still running has written must not look orphaned.
ORPHAN_MIN_AGE = timedelta(hours=1)
# The most keys one DeleteObjects request may name.
DELETE_BATCH = 1000
# The same client serves every request thread (boto3 clients are thread-safe); the pool bounds parallel requests.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32,
                       connect_timeout=10, read_timeout=60)


def parse_blob_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/"); the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"SNAPCLASS_BLOB_URL must look like s3://BUCKET or s3://BUCKET/PREFIX, not {url!r} "
                         "(credentials and the endpoint come from the AWS_* environment settings)")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", client=None):
        self.bucket, self.prefix = bucket, prefix
        self.client = client or boto3.session.Session().client("s3", config=CLIENT_CONFIG)

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        return cls(*parse_blob_url(url))

    def name(self, key: str, kind: str) -> str:
        return self.prefix + blob_name(key, kind)

    def put(self, key: str, files: dict[str, bytes]) -> None:
        # A PutObject is atomic: the object is whole or absent, so no `.part` dance.
        for kind, data in files.items():
            self.client.put_object(Bucket=self.bucket, Key=self.name(key, kind), Body=data)

    def read(self, key: str, kind: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.name(key, kind))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"s3://{self.bucket}/{self.name(key, kind)}") from None
            raise
        with response["Body"] as body:
            return body.read()

    def _objects(self, prefix: str, max_keys: int | None = None):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix,
            PaginationConfig={"MaxItems": max_keys} if max_keys else {})
        for page in pages:
            yield from page.get("Contents", [])

    def _delete(self, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start:start + DELETE_BATCH]
            response = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": n} for n in batch], "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise OSError(f"could not delete {len(response['Errors'])} objects from s3://{self.bucket}, "
                              f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}")

    def delete(self, key: str) -> None:
        # Every kind, the crops at whichever input sizes included: whatever is named `<key>.*`.
        folder = self.name(key, ORIGINAL).rsplit("/", 1)[0]
        self._delete([o["Key"] for o in self._objects(f"{folder}/{key}.")])

    def remove_orphans(self, keep: set[str], min_age: timedelta = ORPHAN_MIN_AGE) -> int:
        """Delete objects whose key is not in `keep` and that were written over `min_age` ago.

        Unlike the data dir, a bucket is shared: several server processes may use it at once, and an upload
        puts its objects before its database row commits, so a young object without a row may be one that
        another server is uploading right now. No upload takes an hour; an older object without a row was left
        by one that failed. Only names of our own shape, `<prefix><xx>/<key>.<kind>.<ext>`, are considered."""
        cutoff = datetime.now(timezone.utc) - min_age
        doomed = []
        for obj in self._objects(self.prefix):
            folder, _, base = obj["Key"][len(self.prefix):].partition("/")
            key = base.split(".", 1)[0]
            if (len(folder) != 2 or "/" in base or not key.isalnum() or not key.startswith(folder)
                    or key in keep or obj["LastModified"] > cutoff):
                continue
            doomed.append(obj["Key"])
        self._delete(doomed)
        return len(doomed)

    def has_any(self) -> bool:
        return next(self._objects(self.prefix, max_keys=1), None) is not None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
