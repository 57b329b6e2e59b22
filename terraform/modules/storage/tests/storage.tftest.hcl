mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::unit-bucket" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/unit" }
  }
}

variables {
  name = "unit"
}

run "bucket_is_private_encrypted_and_versioned" {
  command = apply

  assert {
    condition     = aws_s3_bucket.this.bucket == "unit-123456789012-artifacts"
    error_message = "The bucket name must be derived from the name and the account id."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "All four public access blocks must be on."
  }

  assert {
    condition = (
      one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" &&
      one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == aws_kms_key.this.arn &&
      one(aws_s3_bucket_server_side_encryption_configuration.this.rule).bucket_key_enabled
    )
    error_message = "The bucket must be encrypted with SSE-KMS, the module's customer managed key and a bucket key."
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The customer managed key must rotate."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "Versioning must be enabled."
  }

  assert {
    condition     = aws_s3_bucket_logging.this.target_bucket == aws_s3_bucket.access_logs.id
    error_message = "Access logs must go to the access log bucket."
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.this.rule[0].noncurrent_version_expiration[0].noncurrent_days == 90
    error_message = "Old artifact versions must expire after noncurrent_version_expiration_days."
  }

  assert {
    condition = anytrue([
      for statement in jsondecode(aws_s3_bucket_policy.this[0].policy).Statement :
      statement.Effect == "Deny" && statement.Principal == "*" && statement.Condition.Bool["aws:SecureTransport"] == "false"
    ])
    error_message = "The bucket policy must deny requests that are not made over TLS."
  }

  assert {
    condition     = output.data_s3_uri == "s3://${aws_s3_bucket.this.bucket}/data/" && output.model_s3_uri == "s3://${aws_s3_bucket.this.bucket}/models/"
    error_message = "The prefix URIs are wrong."
  }
}

run "tls_policy_can_be_left_out_for_emulators" {
  command = apply

  variables {
    enforce_tls = false
  }

  assert {
    condition     = length(aws_s3_bucket_policy.this) == 0
    error_message = "enforce_tls = false must not attach the TLS-only policy."
  }

  assert {
    condition     = length(jsondecode(aws_s3_bucket_policy.access_logs.policy).Statement) == 1
    error_message = "The access log bucket must keep only its log delivery statement."
  }
}

run "rejects_prefix_without_slash" {
  command = plan

  variables {
    data_prefix = "data"
  }

  expect_failures = [var.data_prefix]
}

run "rejects_short_key_deletion_window" {
  command = plan

  variables {
    kms_key_deletion_window_days = 3
  }

  expect_failures = [var.kms_key_deletion_window_days]
}
