"""The template's IAM policy documents (infra/policies/*.json, the files the Terraform reads)
enforced for real by moto's S3 server in IAM-enforcing mode on 127.0.0.1: a writer pushes, a
reader pulls and cannot push (exit 4 naming s3:PutObject and who grants it), nobody deletes,
unsigned requests are denied, and missing or expired credentials say how to log in.

What moto enforces (5.2.x, see moto/core/authorization.py and moto/iam/access_control.py):
after `INITIAL_NO_AUTH_ACTION_COUNT` requests (reset at run time with POST /moto-api/reset-auth)
every request must be SigV4-signed by a key of an IAM user it knows, and its action + resource
must be allowed, with no explicit Deny, by the user's inline, attached, group-inline or
group-attached policies. Condition blocks are not evaluated (an Allow with a condition applies
unconditionally; a Deny with one always denies), and bucket policies are evaluated only for
object requests, without principal or conditions: the TLS-only bucket policy would deny every
request, so it is checked by tests/test_infra.py, not loaded here.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.data_servers import TEMPLATE, MotoServer, data_files, invoke, run, start_moto, stop, tree_digest

BUCKET = "lab-dvc-bucket"
PREFIX = "traffic"
POLICIES = next(TEMPLATE.glob("*infra*")) / "policies"


def policy(name: str) -> str:
    """A policy file rendered as Terraform's templatefile() renders it for BUCKET/PREFIX."""
    text = (POLICIES / name).read_text()
    for variable, value in {"partition": "aws", "bucket": BUCKET, "object_prefix": f"{PREFIX}/"}.items():
        text = text.replace("${" + variable + "}", value)
    assert "${" not in text, f"{name}: a template variable the test does not know"
    json.loads(text)
    return text


@dataclass
class Team:
    server: MotoServer
    keys: dict[str, tuple[str, str]]  # user -> (access key id, secret)
    log: Path  # the server's request log (werkzeug: one '"GET /path?query HTTP/1.1" status' line each)

    def listed_prefixes(self) -> list[str]:
        """The prefix of every ListObjects request the server answered, in order."""
        prefixes = []
        for path in re.findall(r'"GET (/[^ ?]+/?\?[^ ]*) HTTP', self.log.read_text(errors="replace")):
            bucket, _, query = path.partition("?")
            if bucket.strip("/") == BUCKET and ("list-type" in query or "prefix=" in query):
                prefixes.append(parse_qs(query).get("prefix", [""])[0])
        return prefixes

    def s3(self, user: str):  # type: ignore[no-untyped-def]
        key, secret = self.keys[user]
        return self.server.client(key, secret)

    def environ(self, user: str) -> dict[str, str]:
        key, secret = self.keys[user]
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}


def post(url: str, body: str) -> None:
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Groups made exactly as infra/main.tf makes them (managed policies attached to groups),
    one user in each, then IAM enforced for every later request."""
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    server = start_moto(log=log)
    try:
        iam = boto3.client(
            "iam", endpoint_url=server.endpoint, aws_access_key_id="bootstrap", aws_secret_access_key="x",
            region_name="us-east-1",
        )  # fmt: skip
        server.client().create_bucket(Bucket=BUCKET)
        arns = {
            name: iam.create_policy(PolicyName=f"{BUCKET}-dvc-{name}", PolicyDocument=policy(f"{name}.json"))[
                "Policy"
            ]["Arn"]
            for name in ("reader", "writer")
        }
        groups = {"readers": ["reader"], "writers": ["reader", "writer"]}
        for group, attached in groups.items():
            iam.create_group(GroupName=f"{BUCKET}-{group}")
            for name in attached:
                iam.attach_group_policy(GroupName=f"{BUCKET}-{group}", PolicyArn=arns[name])
        keys = {}
        for user, group in (("reader", "readers"), ("writer", "writers"), ("outsider", None)):
            iam.create_user(UserName=user)
            if group:
                iam.add_user_to_group(GroupName=f"{BUCKET}-{group}", UserName=user)
            created = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (created["AccessKeyId"], created["SecretAccessKey"])
        post(f"{server.endpoint}/moto-api/reset-auth", "0")  # from now on every request is checked
        yield Team(server, keys, log)
    finally:
        stop(server.process)


def use_remote(repo: Path, team: Team, *args: str, extra_env: dict[str, str] | None = None) -> None:
    result = invoke(
        repo, "data.remote", "--url", f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", team.server.endpoint,
        *args, extra_env=extra_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def objects(team: Team) -> set[str]:
    listed = team.s3("writer").list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    return {item["Key"] for item in listed.get("Contents", [])}


def test_writer_pushes_reader_pulls_and_a_reader_push_names_the_missing_permission(
    experiment: Path, team: Team, tmp_path: Path
) -> None:
    writer_key, writer_secret = team.keys["writer"]
    use_remote(
        experiment,
        team,
        "--access-key-id",
        writer_key,
        extra_env={"LABSHIP_SECRET_ACCESS_KEY": writer_secret},
    )
    pushed = invoke(experiment, "data.push")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    stored = objects(team)
    assert len(stored) == data_files(experiment) + 2

    run(experiment, "git", "add", "-A")
    run(experiment, "git", "commit", "-q", "-m", "the team's bucket")
    clone = tmp_path / "reader-clone"
    run(tmp_path, "git", "clone", "-q", str(experiment), str(clone))
    # the reader's own named profile, as `aws configure --profile reader` writes it
    credentials = tmp_path / "aws-credentials"
    reader_key, reader_secret = team.keys["reader"]
    credentials.write_text(
        f"[reader]\naws_access_key_id = {reader_key}\naws_secret_access_key = {reader_secret}\n"
    )
    aws = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    use_remote(clone, team, "--profile", "reader", extra_env=aws)
    pulled = invoke(clone, "data.pull", extra_env=aws)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert tree_digest(clone / "data/processed/pems") == tree_digest(experiment / "data/processed/pems")
    # moto does not evaluate the reader policy's `s3:prefix` condition on ListBucket: check here that
    # DVC only ever lists under the remote's prefix, which is what the condition allows on AWS
    prefixes = team.listed_prefixes()
    assert prefixes and all(prefix.startswith(f"{PREFIX}/") for prefix in prefixes), prefixes

    (clone / "data" / "notes.csv").write_text("station,flow\n1,2\n")
    run(clone, "dvc", "add", "-q", "data/notes.csv")
    (clone / "infra").mkdir()  # a scaffolded experiment with the bucket's Terraform
    refused = invoke(clone, "data.push", extra_env=aws)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    message = refused.stderr
    assert "s3:PutObject" in message and f"arn:aws:s3:::{BUCKET}/{PREFIX}/*" in message
    assert "accepted your credentials" in message and "refused the credentials" not in message
    assert "writers" in message and "infra/terraform.tfvars" in message and f"{BUCKET}-writers" in message
    assert reader_secret not in refused.stdout + message
    assert objects(team) == stored  # nothing of the reader's reached the bucket


def test_nobody_deletes_and_unsigned_requests_are_denied(team: Team) -> None:
    key = f"{PREFIX}/files/md5/00/keep-me"
    team.s3("writer").put_object(Bucket=BUCKET, Key=key, Body=b"data")
    for user in ("reader", "writer", "outsider"):
        with pytest.raises(ClientError, match="AccessDenied"):
            team.s3(user).delete_object(Bucket=BUCKET, Key=key)
        batch = team.s3(user).delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key}]})
        assert not batch.get("Deleted") and batch["Errors"][0]["Code"] == "AccessDenied"
    with pytest.raises(ClientError, match="AccessDenied"):
        team.s3("outsider").get_object(Bucket=BUCKET, Key=key)

    # no credentials at all: nothing read, nothing written
    for method, path, body in (
        ("GET", key, None),
        ("PUT", f"{PREFIX}/anonymous", b"x"),
        ("DELETE", key, None),
    ):
        request = urllib.request.Request(f"{team.server.endpoint}/{BUCKET}/{path}", data=body, method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code >= 400 and b"data" not in refused.value.read()
    assert team.s3("reader").get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"data"
    assert f"{PREFIX}/anonymous" not in objects(team)


def test_missing_or_expired_credentials_say_how_to_log_in(experiment: Path, team: Team) -> None:
    use_remote(experiment, team, "--profile", "ghost")
    missing_profile = invoke(experiment, "data.status")
    assert missing_profile.returncode == 4, missing_profile.stdout + missing_profile.stderr
    assert (
        "no credentials" in missing_profile.stderr
        and "aws sso login --profile ghost" in missing_profile.stderr
    )

    use_remote(experiment, team, "--env-credentials")
    nothing = invoke(experiment, "data.status")
    assert nothing.returncode == 4, nothing.stdout + nothing.stderr
    assert "no credentials" in nothing.stderr and "aws sso login" in nothing.stderr
    assert "AWS_ACCESS_KEY_ID" in nothing.stderr

    stale = {**team.environ("reader"), "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXPIRED"}
    expired = invoke(experiment, "data.status", extra_env=stale)
    assert expired.returncode == 4, expired.stdout + expired.stderr
    assert "expired or is invalid" in expired.stderr and "aws sso login" in expired.stderr
    assert team.keys["reader"][1] not in expired.stdout + expired.stderr

    fresh = invoke(experiment, "data.status", extra_env=team.environ("reader"))
    assert fresh.returncode in (0, 1), fresh.stdout + fresh.stderr  # in or out of sync, but allowed in


def test_template_policies_are_the_ones_loaded() -> None:
    """The files the Terraform reads hold what the tests above rely on (and no delete anywhere)."""
    reader = json.loads(policy("reader.json"))
    writer = json.loads(policy("writer.json"))
    allowed = {
        action
        for document in (reader, writer)
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject"} <= allowed
    assert not any("Delete" in action or action.endswith("*") for action in allowed)
    denied = [statement for statement in writer["Statement"] if statement["Effect"] == "Deny"]
    assert denied and "s3:DeleteObject" in denied[0]["Action"]
