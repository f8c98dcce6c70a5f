"""Which S3 endpoint and credentials reach an `s3://` source or target.

The first that applies wins, each part (endpoint, region, credentials) on its own:

1. explicit settings: `--endpoint-url` (or `LABSHIP_S3_ENDPOINT_URL`) and the key pair in
   `LABSHIP_ACCESS_KEY_ID` / `LABSHIP_SECRET_ACCESS_KEY` (+ `LABSHIP_SESSION_TOKEN`) — secrets come
   from the environment only, never from the command line (`ps`, shell history);
2. the experiment's DVC remote on the same bucket (else its default remote when that is on S3), as
   `invoke data.remote` configured it: `endpointurl` and `region` of `.dvc/config`, the key pair of
   `.dvc/config.local`, or its AWS `profile` (resolved here with botocore);
3. the standard AWS environment: `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`/
   `AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_REGION`/`AWS_DEFAULT_REGION`;
4. nothing: each process (the workers too) uses the AWS SDK's own chain (instance role, ~/.aws).

Credentials found in 1-3 travel to the Dask workers inside each task (workers on other machines
have neither the experiment's `.dvc/config.local` nor the client's environment): use a `tls://`
scheduler on an untrusted network. They are never shown: `Credentials` hides them from reprs, and
every S3 error is masked before it reaches a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from labship.compress.errors import CompressError
from labship.compress.storage import Credentials, Endpoint, ObjectPath, parse_url

ACCESS_ENV = "LABSHIP_ACCESS_KEY_ID"
SECRET_ENV = "LABSHIP_SECRET_ACCESS_KEY"  # the name `invoke data.remote` reads its secret from
TOKEN_ENV = "LABSHIP_SESSION_TOKEN"
ENDPOINT_ENV = "LABSHIP_S3_ENDPOINT_URL"


def _remote_options(url: str, root: Path | None) -> tuple[str, dict[str, str]] | None:
    """(description, merged options) of the DVC remote that serves `url`'s bucket, if any."""
    if root is None or not (root / ".dvc").is_dir():
        return None
    from labship.data import DataError, read_remotes

    try:
        remotes = read_remotes(root)
    except DataError as error:
        raise CompressError(f"{url}: cannot read the DVC remotes for its credentials: {error}") from error
    bucket = url[len("s3://") :].split("/", 1)[0]
    on_s3 = {name: remote for name, remote in remotes.remotes.items() if remote.kind == "s3"}
    same = [name for name, remote in on_s3.items() if remote.url[len("s3://") :].split("/", 1)[0] == bucket]
    chosen = (remotes.default if remotes.default in same else (sorted(same) or [None])[0]) or (
        remotes.default if remotes.default in on_s3 else None
    )
    if chosen is None:
        return None
    remote = on_s3[chosen]
    return f"DVC remote '{chosen}'", {**remote.options, **remote.local_options}


def _profile_credentials(profile: str, origin: str) -> Credentials:
    import botocore.exceptions
    import botocore.session

    try:
        found = botocore.session.Session(profile=profile).get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise CompressError(f"AWS profile {profile!r} ({origin}): {error}; fix ~/.aws/config") from None
    if found is None:
        raise CompressError(f"AWS profile {profile!r} ({origin}) has no credentials; fix ~/.aws/credentials")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def _explicit_credentials(environ: Mapping[str, str]) -> Credentials | None:
    key, secret = environ.get(ACCESS_ENV), environ.get(SECRET_ENV)
    if not key and not secret:
        return None
    if not (key and secret):
        raise CompressError(f"set both {ACCESS_ENV} and {SECRET_ENV} (or neither, to use the DVC remote's)")
    return Credentials(key, secret, environ.get(TOKEN_ENV) or None)


def _credentials(
    options: Mapping[str, str], environ: Mapping[str, str], remote: str
) -> tuple[Credentials, str] | None:
    if explicit := _explicit_credentials(environ):
        return explicit, f"{ACCESS_ENV}/{SECRET_ENV}"
    if options.get("access_key_id") and options.get("secret_access_key"):
        stored = Credentials(
            options["access_key_id"], options["secret_access_key"], options.get("session_token")
        )
        return stored, f"the key pair of {remote} in .dvc/config.local"
    if options.get("profile"):
        return _profile_credentials(options["profile"], remote), f"profile {options['profile']!r} of {remote}"
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        pair = Credentials(
            environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], environ.get("AWS_SESSION_TOKEN")
        )
        return pair, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if environ.get("AWS_PROFILE"):
        return _profile_credentials(
            environ["AWS_PROFILE"], "AWS_PROFILE"
        ), f"profile {environ['AWS_PROFILE']!r}"
    return None


def _bucket_region(url: str) -> str | None:
    """The AWS region of the URL's bucket (AWS answers it to anyone), else None: a bucket outside
    the SDK's default region would otherwise fail every request with a redirect."""
    import pyarrow.fs as pafs

    try:
        return str(pafs.resolve_s3_region(url[len("s3://") :].split("/", 1)[0]))
    except (OSError, ValueError):
        return None


def endpoint_for(
    url: str, *, root: Path | None, endpoint_url: str | None = None, environ: Mapping[str, str] | None = None
) -> Endpoint:
    """The endpoint and credentials for `url` (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    found = _remote_options(url, root)
    remote, options = found if found else ("", {})
    settings = [
        (endpoint_url, "--endpoint-url"),
        (environ.get(ENDPOINT_ENV), ENDPOINT_ENV),
        (options.get("endpointurl"), f"the endpointurl of {remote}"),
        (environ.get("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"),
        (environ.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"),
    ]
    address, url_origin = next(
        ((value, name) for value, name in settings if value), (None, "the AWS default")
    )
    if address and "://" not in address:
        raise CompressError(
            f"endpoint {address!r}: give a URL such as http://127.0.0.1:9000 or https://s3.example.org"
        )
    region = options.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region and not address:
        region = _bucket_region(url)
    chosen = _credentials(options, environ, remote or "the DVC remote")
    credentials, origin = chosen if chosen else (Credentials(), "the AWS SDK's default chain on each machine")
    return Endpoint(address or None, region or None, credentials, origin, url_origin)


def location(
    text: str | Path, *, base: Path, root: Path | None, endpoint_url: str | None = None
) -> Path | ObjectPath:
    """A `--source`/`--target`/config value as a place: `s3://…` on object storage, else a local path."""
    if isinstance(text, str) and text.startswith("s3://"):
        place = parse_url(text, Endpoint())  # a malformed URL is refused before any setting is read
        return replace(place, endpoint=endpoint_for(text, root=root, endpoint_url=endpoint_url))
    if isinstance(text, ObjectPath):
        return text
    return base / text
