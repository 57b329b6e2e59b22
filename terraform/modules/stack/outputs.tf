# `dogclient configure --from-terraform` reads api_url and api_key (through the environments): keep them.

output "api_url" {
  description = "Invoke URL of the API stage, without a trailing slash; null until model_data_url is set."
  value       = one(module.api[*].api_url)
}

output "web_page_url" {
  description = "URL of the web page at the stage root (photo in, breeds out); null until model_data_url is set."
  value       = one(module.api[*].web_page_url)
}

output "api_key" {
  description = "Value of the API key (x-api-key header); null until model_data_url is set."
  value       = one(module.api[*].api_key)
  sensitive   = true
}

output "api_key_id" {
  description = "ID of the API key; null until model_data_url is set."
  value       = one(module.api[*].api_key_id)
}

output "rest_api_id" {
  description = "ID of the REST API; null until model_data_url is set."
  value       = one(module.api[*].rest_api_id)
}

output "lambda_function_name" {
  description = "Name of the inference Lambda function; null until model_data_url is set."
  value       = one(module.api[*].function_name)
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint; null until model_data_url is set."
  value       = one(module.endpoint[*].endpoint_name)
}

output "model_name" {
  description = "Name of the SageMaker model in service; null until model_data_url is set."
  value       = one(module.endpoint[*].model_name)
}

output "scaling_policy_arn" {
  description = "ARN of the endpoint's scaling policy; null without an instance endpoint."
  value       = one(module.endpoint[*].scaling_policy_arn)
}

output "alarm_topic_arn" {
  description = "SNS topic of the stack's own the endpoint alarms notify; null when alarm_actions names others or there is no endpoint."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "endpoint_kms_key_arn" {
  description = "KMS key of the endpoint's ML storage volumes; null for instance-store types, serverless endpoints or no endpoint."
  value       = local.create_endpoint ? local.endpoint_kms_key_arn : null
}

output "bucket_name" {
  description = "Bucket for training data (data/), model artifacts (models/) and the trainer package (code/)."
  value       = module.storage.bucket_name
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "nat_gateway_ids" {
  description = "IDs of the NAT gateways; empty unless enable_nat_gateway is true."
  value       = module.network.nat_gateway_ids
}

output "interface_endpoint_services" {
  description = "Services reached through interface VPC endpoints (only those something in the VPC uses)."
  value       = local.interface_endpoint_services
}

output "sagemaker_role_arn" {
  description = "SageMaker execution role (reads data/, writes models/): pass it to dogbreed launch --role."
  value       = module.iam.sagemaker_role_arn
}

output "sagemaker_role_name" {
  description = "Name of the SageMaker execution role."
  value       = module.iam.sagemaker_role_name
}

output "lambda_role_name" {
  description = "Name of the Lambda role."
  value       = module.iam.lambda_role_name
}

output "lambda_policy_json" {
  description = "The Lambda role's inline policy, for review."
  value       = module.iam.lambda_policy_json
}

output "sagemaker_policy_json" {
  description = "The SageMaker role's inline policy, for review."
  value       = module.iam.sagemaker_policy_json
}

output "operator_policy_json" {
  description = "Policy to attach to whoever runs `dogbreed launch` (iam:PassRole on the SageMaker role to SageMaker only, training and tuning jobs)."
  value       = module.iam.operator_policy_json
}

output "trainer_role_name" {
  description = "Name of the trainer host's role; null when enable_trainer_host is false."
  value       = module.iam.trainer_role_name
}

output "trainer_policy_json" {
  description = "The trainer host role's inline policy; null when enable_trainer_host is false."
  value       = module.iam.trainer_policy_json
}

output "trainer_instance_id" {
  description = "ID of the trainer host; null when enable_trainer_host is false."
  value       = module.trainer_host.instance_id
}

output "trainer_ssm_command" {
  description = "Command that opens a shell on the trainer host; null when it is disabled."
  value       = module.trainer_host.ssm_start_session_command
}

output "trainer_status_parameter" {
  description = "SSM parameter with the trainer host's set-up status (pending, ok, failed: <step>); null when the host is off."
  value       = module.trainer_host.status_parameter_name
}

output "trainer_user_data" {
  description = "The trainer host's rendered user data (no secrets), for review."
  value       = module.trainer_host.user_data
}
