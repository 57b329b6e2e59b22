variable "name" {
  description = "Name prefix for the bucket, its KMS key alias and its access log bucket."
  type        = string
}

variable "bucket_name" {
  description = "Exact name of the data and model bucket; null derives a unique one from name."
  type        = string
  default     = null
}

variable "data_prefix" {
  description = "Key prefix of the training data in the bucket, with a trailing slash."
  type        = string
  default     = "data/"

  validation {
    condition     = endswith(var.data_prefix, "/") && !startswith(var.data_prefix, "/")
    error_message = "data_prefix must end with '/' and must not start with '/', e.g. \"data/\"."
  }
}

variable "model_prefix" {
  description = "Key prefix of the model artifacts in the bucket, with a trailing slash."
  type        = string
  default     = "models/"

  validation {
    condition     = endswith(var.model_prefix, "/") && !startswith(var.model_prefix, "/")
    error_message = "model_prefix must end with '/' and must not start with '/', e.g. \"models/\"."
  }
}

variable "code_prefix" {
  description = "Key prefix of the trainer package the trainer host installs, with a trailing slash."
  type        = string
  default     = "code/"

  validation {
    condition     = endswith(var.code_prefix, "/") && !startswith(var.code_prefix, "/")
    error_message = "code_prefix must end with '/' and must not start with '/', e.g. \"code/\"."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version (an old model artifact, say) is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "noncurrent_versions_to_keep" {
  description = "Newest noncurrent versions of each object kept regardless of age, so a rollback target always exists; null keeps none beyond noncurrent_version_expiration_days."
  type        = number
  default     = 3
}

variable "access_log_retention_days" {
  description = "Days the S3 server access logs are kept."
  type        = number
  default     = 365
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period in days before the customer managed key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30
    error_message = "kms_key_deletion_window_days must be between 7 and 30."
  }
}

variable "allow_cloudwatch_logs" {
  description = "Let CloudWatch Logs of this account and region use the key, so log groups can be encrypted with it."
  type        = bool
  default     = true
}

variable "allow_cloudwatch_alarms" {
  description = "Let CloudWatch alarms of this account publish to SNS topics encrypted with the key (an AWS managed SNS key would refuse them)."
  type        = bool
  default     = false
}

variable "enforce_tls" {
  description = "Attach bucket policies that deny every request not made over TLS. Keep true on AWS; only emulators that ignore policy conditions (where the deny would then block everything) need false."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy delete the buckets even when they still hold objects. Leave false for real data."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
