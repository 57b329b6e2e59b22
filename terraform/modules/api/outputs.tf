output "api_url" {
  description = "Invoke URL of the stage, without a trailing slash (https://<id>.execute-api.<region>.amazonaws.com/<stage>)."
  value       = trimsuffix(aws_api_gateway_stage.this.invoke_url, "/")
}

output "rest_api_id" {
  description = "ID of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_api_gateway_stage.this.stage_name
}

output "api_key_id" {
  description = "ID of the API key; null when require_api_key is false."
  value       = one(aws_api_gateway_api_key.this[*].id)
}

output "api_key" {
  description = "Value of the API key (send it as x-api-key); null when require_api_key is false."
  value       = one(aws_api_gateway_api_key.this[*].value)
  sensitive   = true
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "alias_arn" {
  description = "ARN of the live alias API Gateway invokes."
  value       = aws_lambda_alias.live.arn
}

output "log_group_name" {
  description = "Name of the function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "access_log_group_name" {
  description = "Name of the API's access log group."
  value       = aws_cloudwatch_log_group.access.name
}

output "lambda_security_group_id" {
  description = "ID of the function's own security group; null unless it runs in a VPC (subnet_ids)."
  value       = one(aws_security_group.lambda[*].id)
}

output "web_acl_arn" {
  description = "ARN of the web ACL associated with the stage (created or given); null for none."
  value       = var.web_acl_arn != null ? var.web_acl_arn : one(aws_wafv2_web_acl.this[*].arn)
}

output "environment" {
  description = "Environment variables of the function (no secrets), for review."
  value       = aws_lambda_function.this.environment[0].variables
}

output "web_page_url" {
  description = "URL of the web page (GET / at the stage root; the trailing slash keeps the page's relative calls inside the stage)."
  value       = "${trimsuffix(aws_api_gateway_stage.this.invoke_url, "/")}/"
}
