# Keyed by the instance type: SageMaker rejects UpdateEndpoint when the instance type of a variant that
# is registered with Application Auto Scaling changes. A new type therefore deregisters the old scalable
# target (a destroy, which Terraform runs before updating the endpoint it depends on) and registers a new
# one once the endpoint runs on the new type. Serverless endpoints have no instances to scale.
locals {
  scaling_keys = var.enable_autoscaling && !local.serverless ? toset([var.instance_type]) : toset([])
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.scaling_keys

  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/${var.variant_name}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity

  tags = var.tags
}

resource "aws_appautoscaling_policy" "this" {
  for_each = local.scaling_keys

  name               = "${var.name}-invocations-per-instance"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.target_invocations_per_instance
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds

    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}
