# `dogclient configure --from-terraform` reads these names: keep them stable.

output "api_url" {
  description = "Invoke URL of the API stage, without a trailing slash; null until model_data_url is set."
  value       = module.stack.api_url
}

output "web_page_url" {
  description = "URL of the web page at the stage root (photo in, breeds out); null until model_data_url is set."
  value       = module.stack.web_page_url
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
  description = "Name of the SageMaker endpoint; null until model_data_url is set."
  value       = module.stack.endpoint_name
}

output "bucket_name" {
  description = "Bucket for training data (data/), model artifacts (models/) and the trainer package (code/)."
  value       = module.stack.bucket_name
}

output "trainer_instance_id" {
  description = "ID of the trainer host; null when enable_trainer_host is false."
  value       = module.stack.trainer_instance_id
}

output "trainer_status_parameter" {
  description = "SSM parameter with the trainer host's set-up status: aws ssm get-parameter --name <it>."
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
  description = "Command that opens a shell on the trainer host; null when it is disabled."
  value       = module.stack.trainer_ssm_command
}

output "sagemaker_role_arn" {
  description = "SageMaker execution role (reads data/, writes models/): pass it to dogbreed launch --role."
  value       = module.stack.sagemaker_role_arn
}

output "operator_policy_json" {
  description = "Policy to attach to whoever runs `dogbreed launch`: aws iam put-user-policy --policy-document \"$(terraform output -raw operator_policy_json)\" ..."
  value       = module.stack.operator_policy_json
}

output "alarm_topic_arn" {
  description = "SNS topic the endpoint alarms notify (subscribe to it, or set alarm_emails); null when alarm_actions is set."
  value       = module.stack.alarm_topic_arn
}
