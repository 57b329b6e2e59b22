# `dogclient configure --from-terraform` reads these names: keep them stable.

output "api_url" {
  description = "Invoke URL of the API stage, without a trailing slash."
  value       = module.api.api_url
}

output "api_key" {
  description = "Value of the API key (x-api-key header). Read with: terraform output -raw api_key"
  value       = module.api.api_key
  sensitive   = true
}

output "api_key_id" {
  description = "ID of the API key."
  value       = module.api.api_key_id
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint."
  value       = module.endpoint.endpoint_name
}

output "bucket_name" {
  description = "Bucket for training data (data/), model artifacts (models/) and the trainer package (code/)."
  value       = module.storage.bucket_name
}

output "trainer_instance_id" {
  description = "ID of the trainer host; null when enable_trainer_host is false."
  value       = module.trainer_host.instance_id
}

output "model_name" {
  description = "Name of the SageMaker model in service."
  value       = module.endpoint.model_name
}

output "lambda_function_name" {
  description = "Name of the inference Lambda function."
  value       = module.api.function_name
}

output "trainer_ssm_command" {
  description = "Command that opens a shell on the trainer host; null when it is disabled."
  value       = module.trainer_host.ssm_start_session_command
}

output "sagemaker_role_arn" {
  description = "SageMaker execution role (reads data/, writes models/): pass it to dogbreed launch --role."
  value       = module.iam.sagemaker_role_arn
}
