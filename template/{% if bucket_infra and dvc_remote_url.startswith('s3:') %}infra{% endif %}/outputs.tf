output "dvc_remote_url" {
  description = "The DVC remote URL: give it to `invoke data.remote --url`."
  value       = local.object_prefix == "" ? "s3://${aws_s3_bucket.dvc.bucket}" : "s3://${aws_s3_bucket.dvc.bucket}/${trim(var.prefix, "/")}"
}

output "region" {
  description = "The bucket's region: give it to `invoke data.remote --region`."
  value       = var.region
}

output "data_remote_command" {
  description = "What each teammate runs once (add --profile NAME for their own AWS profile)."
  value       = "invoke data.remote --url ${local.object_prefix == "" ? "s3://${aws_s3_bucket.dvc.bucket}" : "s3://${aws_s3_bucket.dvc.bucket}/${trim(var.prefix, "/")}"} --region ${var.region}"
}

output "readers_group" {
  description = "IAM group of the users who may pull."
  value       = aws_iam_group.readers.name
}

output "writers_group" {
  description = "IAM group of the users who may push."
  value       = aws_iam_group.writers.name
}

output "ci_role_arn" {
  description = "Role for the image workflow (aws-actions/configure-aws-credentials role-to-assume); empty without CI."
  value       = local.ci_enabled ? aws_iam_role.ci[0].arn : ""
}
