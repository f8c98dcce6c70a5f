variable "bucket" {
  description = "Name of the S3 bucket that holds the DVC remote (created here)."
  type        = string
}

variable "prefix" {
  description = "Key prefix of the DVC remote inside the bucket (the path of s3://BUCKET/PREFIX), without slashes at the ends; empty for the whole bucket."
  type        = string
  default     = ""
}

variable "region" {
  description = "AWS region of the bucket."
  type        = string
  default     = "eu-west-1"
}

variable "readers" {
  description = "Existing IAM user names that may list and download the data (invoke data.pull)."
  type        = list(string)
  default     = []
}

variable "writers" {
  description = "Existing IAM user names that may also upload (invoke data.push); nobody may delete."
  type        = list(string)
  default     = []
}

variable "noncurrent_version_days" {
  description = "Days an overwritten object version is kept before the lifecycle rule expires it."
  type        = number
  default     = 90
}

variable "ci_github_repository" {
  description = "owner/name of the GitHub repository whose image workflow may read the data through an OIDC role; empty for no CI role."
  type        = string
  default     = ""
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing token.actions.githubusercontent.com OIDC provider; empty to create it (one per account)."
  type        = string
  default     = ""
}
