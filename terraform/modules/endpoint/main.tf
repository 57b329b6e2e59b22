data "aws_sagemaker_prebuilt_ecr_image" "this" {
  count = var.image_uri == null ? 1 : 0

  repository_name = var.image_repository_name
  image_tag       = var.image_tag
}

locals {
  serverless = var.mode == "serverless"
  # The provider knows no prebuilt-image registry for some regions (mx-central-1, ...): image_uri then.
  image = var.image_uri != null ? var.image_uri : one(data.aws_sagemaker_prebuilt_ecr_image.this[*].registry_path)

  environment = merge(var.container_environment, {
    # model.tar.gz carries code/inference.py; the container runs it from the extracted artifact.
    SAGEMAKER_PROGRAM          = "inference.py"
    SAGEMAKER_SUBMIT_DIRECTORY = "/opt/ml/model/code"
  })

  # Model names must be unique, so a new artifact (or any other change that replaces the model)
  # gets a new name and the endpoint moves to it before the old model is deleted.
  model_fingerprint = substr(sha256(jsonencode({
    image              = local.image
    model_data_url     = var.model_data_url
    environment        = local.environment
    execution_role_arn = var.execution_role_arn
    network_isolation  = var.enable_network_isolation
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  })), 0, 12)

  initial_instance_count = coalesce(var.initial_instance_count, var.min_capacity)

  # Known at plan time (the endpoint's name is var.name), so the alarms can be named in the endpoint's
  # own auto-rollback configuration without a cycle.
  resource_id = "endpoint/${var.name}/variant/${var.variant_name}"
  alarm_names = var.enable_alarms ? ["${var.name}-invocation-5xx-errors", "${var.name}-model-latency"] : []
}

resource "aws_sagemaker_model" "this" {
  name                     = "${var.name}-${local.model_fingerprint}"
  execution_role_arn       = var.execution_role_arn
  enable_network_isolation = var.enable_network_isolation

  primary_container {
    image          = local.image
    model_data_url = var.model_data_url
    environment    = local.environment
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []

    content {
      subnets            = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true

    # What Serverless Inference does not support, refused at plan time instead of by CreateEndpointConfig.
    precondition {
      condition     = !local.serverless || (length(var.subnet_ids) == 0 && !var.enable_network_isolation)
      error_message = "mode = \"serverless\" supports neither VPC config (subnet_ids) nor network isolation: leave subnet_ids empty and enable_network_isolation false."
    }
  }
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name_prefix = "${var.name}-"
  kms_key_arn = var.kms_key_arn

  production_variants {
    variant_name           = var.variant_name
    model_name             = aws_sagemaker_model.this.name
    instance_type          = local.serverless ? null : var.instance_type
    initial_instance_count = local.serverless ? null : local.initial_instance_count

    dynamic "serverless_config" {
      for_each = local.serverless ? [1] : []

      content {
        memory_size_in_mb       = var.serverless_memory_size_mb
        max_concurrency         = var.serverless_max_concurrency
        provisioned_concurrency = var.serverless_provisioned_concurrency
      }
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = !local.serverless || (var.kms_key_arn == null && !strcontains(var.image_tag, "gpu") && !strcontains(coalesce(var.image_uri, "-"), "gpu"))
      error_message = "mode = \"serverless\" runs on CPUs only and takes no volume KMS key: use a CPU image tag and kms_key_arn = null."
    }
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name

  # A new configuration (a new model) goes to a new fleet first and takes traffic step by step; a
  # firing 5xx or latency alarm sends all traffic back to the old fleet.
  dynamic "deployment_config" {
    for_each = var.deployment_traffic_routing != "ALL_AT_ONCE" || length(local.alarm_names) > 0 ? [1] : []

    content {
      blue_green_update_policy {
        termination_wait_in_seconds          = var.deployment_termination_wait_seconds
        maximum_execution_timeout_in_seconds = var.deployment_max_execution_seconds

        traffic_routing_configuration {
          type                     = var.deployment_traffic_routing
          wait_interval_in_seconds = var.deployment_wait_interval_seconds

          dynamic "canary_size" {
            for_each = var.deployment_traffic_routing == "CANARY" ? [1] : []

            content {
              type  = "CAPACITY_PERCENT"
              value = var.deployment_step_percent
            }
          }

          dynamic "linear_step_size" {
            for_each = var.deployment_traffic_routing == "LINEAR" ? [1] : []

            content {
              type  = "CAPACITY_PERCENT"
              value = var.deployment_step_percent
            }
          }
        }
      }

      dynamic "auto_rollback_configuration" {
        for_each = length(local.alarm_names) > 0 ? [1] : []

        content {
          dynamic "alarms" {
            for_each = local.alarm_names

            content {
              alarm_name = alarms.value
            }
          }
        }
      }
    }
  }

  tags = var.tags

  # The alarms the roll-back watches exist before the endpoint is created or updated.
  depends_on = [aws_cloudwatch_metric_alarm.errors_5xx, aws_cloudwatch_metric_alarm.model_latency]
}
