output "endpoint_name" {
  description = "Name of the SageMaker endpoint."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "ARN of the SageMaker endpoint."
  value       = aws_sagemaker_endpoint.this.arn
}

output "model_name" {
  description = "Name of the SageMaker model the endpoint serves (changes with the artifact)."
  value       = aws_sagemaker_model.this.name
}

output "endpoint_configuration_name" {
  description = "Name of the endpoint configuration in service."
  value       = aws_sagemaker_endpoint_configuration.this.name
}

output "variant_name" {
  description = "Name of the production variant."
  value       = var.variant_name
}

output "image_uri" {
  description = "URI of the prebuilt inference image the model runs."
  value       = local.image
}

output "scaling_policy_arn" {
  description = "ARN of the target-tracking scaling policy; null when enable_autoscaling is false or mode is serverless."
  value       = one([for policy in aws_appautoscaling_policy.this : policy.arn])
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms on the endpoint."
  value       = concat(aws_cloudwatch_metric_alarm.errors_5xx[*].alarm_name, aws_cloudwatch_metric_alarm.model_latency[*].alarm_name)
}
