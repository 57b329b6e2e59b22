output "sagemaker_role_arn" {
  description = "ARN of the SageMaker execution role."
  value       = aws_iam_role.sagemaker.arn
  # The model and training jobs are created with this ARN: only once the role's policy exists.
  depends_on = [aws_iam_role_policy.sagemaker]
}

output "sagemaker_role_name" {
  description = "Name of the SageMaker execution role."
  value       = aws_iam_role.sagemaker.name
}

output "lambda_role_arn" {
  description = "ARN of the inference Lambda function's execution role."
  value       = aws_iam_role.lambda.arn
  # The function is created with this ARN: only once the role's policy exists.
  depends_on = [aws_iam_role_policy.lambda]
}

output "lambda_role_name" {
  description = "Name of the inference Lambda function's execution role."
  value       = aws_iam_role.lambda.name
}

output "trainer_role_name" {
  description = "Name of the trainer host's role; null when create_trainer_instance_profile is false."
  value       = one(aws_iam_role.trainer[*].name)
}

output "trainer_instance_profile_name" {
  description = "Name of the trainer host's instance profile; null when create_trainer_instance_profile is false."
  value       = one(aws_iam_instance_profile.trainer[*].name)
  # The host boots with this profile and uses S3 and SSM at once: only once its policies exist.
  depends_on = [aws_iam_role_policy.trainer, aws_iam_role_policy_attachment.trainer_ssm]
}

output "endpoint_arn" {
  description = "ARN of the SageMaker endpoint the Lambda role may invoke."
  value       = local.endpoint_arn
}

output "lambda_policy_json" {
  description = "The Lambda role's inline policy document, for review."
  value       = local.lambda_policy
}

output "sagemaker_policy_json" {
  description = "The SageMaker role's inline policy document, for review."
  value       = local.sagemaker_policy
}

output "trainer_policy_json" {
  description = "The trainer host role's inline policy document; null when create_trainer_instance_profile is false."
  value       = var.create_trainer_instance_profile ? jsonencode({ Version = "2012-10-17", Statement = local.trainer_statements }) : null
}

output "operator_policy_json" {
  description = "Policy an operator needs for `dogbreed launch` (iam:PassRole on the SageMaker role to SageMaker only, create/describe/stop training and tuning jobs): attach it to the operators' users or roles."
  value       = local.operator_policy
}
