# `dogclient configure --from-terraform` reads these names: keep them stable.

output "api_url" {
  description = "Invoke URL of the API stage, without a trailing slash."
  value       = module.stack.api_url
}

output "api_key" {
  description = "Value of the API key (x-api-key header). Read with: terraform output -raw api_key"
  value       = module.stack.api_key
  sensitive   = true
}

output "api_key_id" {
  description = "ID of the API key."
  value       = module.stack.api_key_id
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint."
  value       = module.stack.endpoint_name
}

output "bucket_name" {
  description = "Bucket for training data (data/), model artifacts (models/) and the trainer package (code/)."
  value       = module.stack.bucket_name
}

output "trainer_instance_id" {
  description = "ID of the trainer host."
  value       = module.stack.trainer_instance_id
}

output "trainer_status_parameter" {
  description = "SSM parameter with the trainer host's set-up status."
  value       = module.stack.trainer_status_parameter
}

output "model_name" {
  description = "Name of the SageMaker model in service."
  value       = module.stack.model_name
}

output "lambda_function_name" {
  description = "Name of the inference Lambda function."
  value       = module.stack.lambda_function_name
}

output "trainer_ssm_command" {
  description = "Command that opens a shell on the trainer host."
  value       = module.stack.trainer_ssm_command
}

output "rest_api_id" {
  description = "ID of the REST API (the tests look its routes up)."
  value       = module.stack.rest_api_id
}

output "lambda_role_name" {
  description = "Name of the Lambda role (the tests check its policy)."
  value       = module.stack.lambda_role_name
}

output "sagemaker_role_name" {
  description = "Name of the SageMaker role (the tests check its policy)."
  value       = module.stack.sagemaker_role_name
}

output "trainer_role_name" {
  description = "Name of the trainer host's role (the tests check its policies)."
  value       = module.stack.trainer_role_name
}

output "scaling_policy_arn" {
  description = "ARN of the endpoint's scaling policy."
  value       = module.stack.scaling_policy_arn
}

output "alarm_topic_arn" {
  description = "SNS topic the endpoint alarms notify."
  value       = module.stack.alarm_topic_arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.stack.vpc_id
}
