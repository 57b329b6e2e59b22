resource "aws_cloudwatch_metric_alarm" "errors_5xx" {
  count = var.enable_alarms ? 1 : 0

  alarm_name          = local.alarm_names[0]
  alarm_description   = "The ${var.name} endpoint answered with 5xx errors: the model or its container is failing."
  namespace           = "AWS/SageMaker"
  metric_name         = "Invocation5XXErrors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.error_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  dimensions = {
    EndpointName = var.name
    VariantName  = var.variant_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "model_latency" {
  count = var.enable_alarms ? 1 : 0

  alarm_name          = local.alarm_names[1]
  alarm_description   = "The ${var.name} model's average latency is above ${var.model_latency_threshold_ms} ms."
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  # ModelLatency is reported in microseconds.
  threshold           = var.model_latency_threshold_ms * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  dimensions = {
    EndpointName = var.name
    VariantName  = var.variant_name
  }

  tags = var.tags
}
