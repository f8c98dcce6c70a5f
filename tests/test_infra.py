"""The template's infra/ (Terraform for the DVC bucket and its IAM groups), checked without cloud
access and without a `terraform` binary: rendered by copier, parsed with python-hcl2 to assert the
resources and that every policy file is read, formatted as `terraform fmt` lays it out, and
scanned by checkov (each skipped check justified inline)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import copier
import hcl2
import pytest
from copier.errors import DirtyLocalWarning

from tests.conftest import require
from tests.scaffold import TEMPLATE, TEST_PYTHON

BUCKET = "lab-dvc-bucket"
# checkov cannot share an environment with the test tools (it pins packaging<24, poetry needs
# >=24.2): it runs from its own environment, made once by uv and cached.
CHECKOV = "checkov==3.3.30"


def render(tmp_path: Path, remote: str, **answers: Any) -> Path:
    """The template rendered with `remote` as the DVC remote, without the hook (no git, no lock)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(TEMPLATE), tmp_path / "exp", data={"python_version": TEST_PYTHON, "dvc_remote_url": remote, **answers},
            defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True, skip_tasks=True,
        )  # fmt: skip
    return tmp_path / "exp"


def plain(value: Any) -> Any:
    """python-hcl2's output without its quoting of keys and strings and its bookkeeping keys."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def terraform(infra: Path) -> dict[str, Any]:
    """Every .tf file parsed, blocks merged by kind: {"resource": {type: {name: body}}, ...}."""
    merged: dict[str, Any] = {"resource": {}, "output": {}, "variable": {}}
    for file in sorted(infra.glob("*.tf")):
        with file.open() as handle:
            parsed = plain(hcl2.load(handle))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for key in ("output", "variable"):
            for block in parsed.get(key, []):
                merged[key].update(block)
    return merged


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("infra"), f"s3://{BUCKET}/traffic") / "infra"


def test_infra_only_for_an_s3_remote_and_can_be_declined(tmp_path: Path, infra: Path) -> None:
    assert (infra / "main.tf").is_file() and (infra / "terraform.tfvars").is_file()  # on by default for s3://
    assert not (render(tmp_path / "local", "../dvc-storage") / "infra").exists()
    assert not (render(tmp_path / "declined", f"s3://{BUCKET}/x", bucket_infra=False) / "infra").exists()


def test_bucket_is_versioned_encrypted_private_tls_only_and_expires_old_versions(infra: Path) -> None:
    resources = terraform(infra)["resource"]
    assert resources["aws_s3_bucket"]["dvc"]["bucket"] == "${var.bucket}"
    versioning = resources["aws_s3_bucket_versioning"]["dvc"]["versioning_configuration"][0]
    assert versioning["status"] == "Enabled"
    encryption = resources["aws_s3_bucket_server_side_encryption_configuration"]["dvc"]["rule"][0]
    assert encryption["apply_server_side_encryption_by_default"][0]["sse_algorithm"] in ("AES256", "aws:kms")
    blocked = resources["aws_s3_bucket_public_access_block"]["dvc"]
    assert all(
        blocked[key] is True
        for key in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    assert "policies/bucket.json" in resources["aws_s3_bucket_policy"]["tls_only"]["policy"]
    rule = resources["aws_s3_bucket_lifecycle_configuration"]["dvc"]["rule"][0]
    assert rule["status"] == "Enabled" and rule["noncurrent_version_expiration"][0]["noncurrent_days"]

    bucket_policy = json.loads((infra / "policies" / "bucket.json").read_text())
    tls = [
        s
        for s in bucket_policy["Statement"]
        if s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert tls and tls[0]["Effect"] == "Deny" and tls[0]["Principal"] == "*"


def test_readers_writers_and_ci_role_use_every_policy_file(infra: Path) -> None:
    parsed = terraform(infra)
    resources = parsed["resource"]
    assert set(resources["aws_iam_group"]) == {"readers", "writers"}
    attached = {
        (body["group"], body["policy_arn"]) for body in resources["aws_iam_group_policy_attachment"].values()
    }
    assert attached == {
        ("${aws_iam_group.readers.name}", "${aws_iam_policy.reader.arn}"),
        ("${aws_iam_group.writers.name}", "${aws_iam_policy.reader.arn}"),
        ("${aws_iam_group.writers.name}", "${aws_iam_policy.writer.arn}"),
    }
    assert resources["aws_iam_group_membership"]["writers"]["users"] == "${var.writers}"
    assert resources["aws_iam_role"]["ci"]["count"] == "${local.ci_enabled ? 1 : 0}"
    assert {
        "dvc_remote_url",
        "region",
        "data_remote_command",
        "readers_group",
        "writers_group",
        "ci_role_arn",
    } <= set(parsed["output"])

    text = "\n".join(file.read_text() for file in infra.glob("*.tf"))
    read = set(re.findall(r'(?:templatefile|file)\("\$\{path\.module\}/(policies/[^"]+)"', text))
    on_disk = {f"policies/{file.name}" for file in (infra / "policies").glob("*.json")}
    assert on_disk and read == on_disk  # every policy document is used, and only these
    for name in on_disk:
        json.loads(re.sub(r"\$\{\w+\}", "x", (infra / name).read_text()))  # valid JSON once templated


def test_tfvars_carry_the_remote_and_stay_literal_for_a_hostile_prefix(tmp_path: Path, infra: Path) -> None:
    with (infra / "terraform.tfvars").open() as handle:
        answers = plain(hcl2.load(handle))
    assert answers["bucket"] == BUCKET and answers["prefix"] == "traffic"
    assert answers["readers"] == [] and answers["writers"] == []

    hostile = (
        render(tmp_path, 's3://lab-dvc-bucket/a"b${file("/etc/passwd")}%{if true}x')
        / "infra"
        / "terraform.tfvars"
    )
    text = hostile.read_text()
    assert "${file" not in text.replace("$${file", "") and "%{if" not in text.replace("%%{if", "")
    with hostile.open() as handle:
        assert plain(hcl2.load(handle))["bucket"] == BUCKET


def fmt_problems(file: Path) -> list[str]:
    """Departures from `terraform fmt` layout: 2 spaces per nesting level (a line opening `({` is one
    level, as terraform fmt indents it), the '=' of
    consecutive one-line attributes aligned, no tabs or trailing blanks, one final newline."""
    text = file.read_text()
    problems = [] if text.endswith("\n") and not text.endswith("\n\n") else ["final newline"]
    depth, group = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if "\t" in line or line != line.rstrip():
            problems.append(f"{file.name}:{number}: tab or trailing blank")
        closes = stripped[:1] in "}])" and stripped != ""
        expected = "  " * (depth - closes)
        if stripped and not stripped.startswith("#") and not line.startswith(expected + stripped[:1]):
            problems.append(
                f"{file.name}:{number}: indented {len(line) - len(line.lstrip())}, expected {len(expected)}"
            )
        attribute = re.match(r"^(\s*)([\w\"-]+)(\s*)= ", line)
        if attribute and not stripped.endswith(("{", "[", "(")):
            group.append((number, line.index("=")))
        else:
            if len({column for _, column in group}) > 1:
                problems.append(f"{file.name}:{group[0][0]}-{group[-1][0]}: '=' not aligned")
            group = []
        if not stripped.startswith("#"):  # one level per line, however many brackets open it: `({`
            net = sum(stripped.count(c) for c in "{[(") - sum(stripped.count(c) for c in "}])")
            depth += (net > 0) - (net < 0)
    return problems + ([f"{file.name}: unbalanced braces"] if depth else [])


def test_terraform_is_formatted(infra: Path) -> None:
    files = sorted(infra.glob("*.tf"))
    assert len(files) >= 4
    assert [problem for file in files for problem in fmt_problems(file)] == []
    for policy in (infra / "policies").glob("*.json"):
        text = policy.read_text()
        assert (
            text.endswith("}\n")
            and "\t" not in text
            and all(line == line.rstrip() for line in text.splitlines())
        )


def checkov_command() -> list[str] | None:
    found = shutil.which("checkov")
    if found:
        return [found]
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    return (
        [
            uv,
            "tool",
            "run",
            "--python",
            f"{sys.version_info.major}.{sys.version_info.minor}",
            "--from",
            CHECKOV,
            "checkov",
        ]
        if Path(uv).exists()
        else None
    )


@pytest.mark.slow
def test_checkov_passes_with_every_skip_justified(infra: Path) -> None:
    text = "\n".join(file.read_text() for file in infra.glob("*.tf"))
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", text)
    assert skips and all(colon and len(reason.strip()) > 20 for _, colon, reason in skips)

    command = checkov_command()
    require(command is not None, "neither checkov nor uv is installed")
    assert command is not None
    result = subprocess.run(
        [*command, "-d", str(infra), "--framework", "terraform", "--skip-download", "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "LOG_LEVEL": "ERROR"},
    )  # fmt: skip
    require(
        "No solution found" not in result.stderr and "Failed to fetch" not in result.stderr,
        f"checkov could not be installed: {result.stderr[-300:]}",
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert result.returncode == 0 and summary["failed"] == 0, result.stdout[-3000:]
    assert summary["passed"] >= 20 and summary["skipped"] == len(skips)
