output "bucket_name" {
  description = "Name of the data and model artifacts bucket."
  value       = aws_s3_bucket.this.bucket
}

output "bucket_arn" {
  description = "ARN of the data and model artifacts bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the bucket."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the customer managed KMS key."
  value       = aws_kms_alias.this.name
}

output "data_prefix" {
  description = "Key prefix of the training data."
  value       = var.data_prefix
}

output "model_prefix" {
  description = "Key prefix of the model artifacts."
  value       = var.model_prefix
}

output "code_prefix" {
  description = "Key prefix of the trainer package."
  value       = var.code_prefix
}

output "data_s3_uri" {
  description = "S3 URI of the training data folder, e.g. s3://bucket/data/."
  value       = "s3://${aws_s3_bucket.this.bucket}/${var.data_prefix}"
}

output "model_s3_uri" {
  description = "S3 URI of the model artifacts folder, e.g. s3://bucket/models/."
  value       = "s3://${aws_s3_bucket.this.bucket}/${var.model_prefix}"
}

output "access_log_bucket_name" {
  description = "Name of the bucket that receives the S3 server access logs."
  value       = aws_s3_bucket.access_logs.id
}
