output "sagemaker_role_arn" {
  description = "ARN of the SageMaker execution role."
  value       = aws_iam_role.sagemaker.arn
}

output "sagemaker_role_name" {
  description = "Name of the SageMaker execution role."
  value       = aws_iam_role.sagemaker.name
}

output "lambda_role_arn" {
  description = "ARN of the inference Lambda function's execution role."
  value       = aws_iam_role.lambda.arn
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
}

output "endpoint_arn" {
  description = "ARN of the SageMaker endpoint the Lambda role may invoke."
  value       = local.endpoint_arn
}

output "lambda_policy_json" {
  description = "The Lambda role's inline policy document, for review."
  value       = local.lambda_policy
}
