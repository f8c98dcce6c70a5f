# Optional: a role the image workflow assumes with GitHub's OIDC token (no stored AWS key) to read
# the data, e.g. to test the notebook image against it. Only the given repository may assume it.

locals {
  ci_enabled    = var.ci_github_repository != ""
  create_oidc   = local.ci_enabled && var.github_oidc_provider_arn == ""
  oidc_provider = local.create_oidc ? aws_iam_openid_connect_provider.github[0].arn : var.github_oidc_provider_arn
}

resource "aws_iam_openid_connect_provider" "github" {
  count          = local.create_oidc ? 1 : 0
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "ci" {
  count = local.ci_enabled ? 1 : 0
  name  = "${var.bucket}-dvc-ci"

  assume_role_policy = templatefile("${path.module}/policies/ci-trust.json", {
    oidc_provider_arn = local.oidc_provider
    repository        = var.ci_github_repository
  })
}

resource "aws_iam_role_policy_attachment" "ci_read" {
  count      = local.ci_enabled ? 1 : 0
  role       = aws_iam_role.ci[0].name
  policy_arn = aws_iam_policy.reader.arn
}
