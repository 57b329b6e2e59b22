mock_provider "aws" {
  mock_data "aws_sagemaker_prebuilt_ecr_image" {
    defaults = { registry_path = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312" }
  }
}

variables {
  name               = "unit-endpoint"
  execution_role_arn = "arn:aws:iam::123456789012:role/unit-sagemaker"
  model_data_url     = "s3://unit-bucket/models/run-1/model.tar.gz"
}

run "first_artifact" {
  command = apply

  assert {
    condition     = aws_sagemaker_model.this.primary_container[0].model_data_url == "s3://unit-bucket/models/run-1/model.tar.gz"
    error_message = "The model must serve the given artifact."
  }

  assert {
    condition = (
      aws_sagemaker_model.this.primary_container[0].environment["SAGEMAKER_PROGRAM"] == "inference.py" &&
      aws_sagemaker_model.this.primary_container[0].environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    )
    error_message = "The container must run code/inference.py from the artifact."
  }

  assert {
    condition     = aws_sagemaker_model.this.primary_container[0].image == "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    error_message = "The model must run the prebuilt PyTorch inference image."
  }

  assert {
    condition     = aws_sagemaker_model.this.enable_network_isolation
    error_message = "The container runs without network access by default."
  }

  assert {
    condition     = startswith(aws_sagemaker_model.this.name, "unit-endpoint-") && aws_sagemaker_model.this.name != "unit-endpoint"
    error_message = "The model name must carry a suffix derived from the artifact."
  }

  assert {
    condition     = aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "SageMakerVariantInvocationsPerInstance"
    error_message = "The scaling policy must track SageMakerVariantInvocationsPerInstance."
  }

  assert {
    condition = (
      aws_appautoscaling_policy.this["ml.m5.large"].policy_type == "TargetTrackingScaling" &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].target_value == 1500 &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 600 &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 300
    )
    error_message = "The scaling policy must track 1500 invocations per instance per minute (the serving benchmark's 51.6 req/s x 0.5 x 60) and not scale out again before a new instance has started."
  }

  assert {
    condition = (
      aws_appautoscaling_target.this["ml.m5.large"].resource_id == "endpoint/unit-endpoint/variant/AllTraffic" &&
      aws_appautoscaling_target.this["ml.m5.large"].scalable_dimension == "sagemaker:variant:DesiredInstanceCount" &&
      aws_appautoscaling_target.this["ml.m5.large"].min_capacity == 1 && aws_appautoscaling_target.this["ml.m5.large"].max_capacity == 4
    )
    error_message = "The scalable target must be the endpoint's variant."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.errors_5xx[0].metric_name == "Invocation5XXErrors" &&
      aws_cloudwatch_metric_alarm.model_latency[0].metric_name == "ModelLatency" &&
      aws_cloudwatch_metric_alarm.model_latency[0].threshold == 1000000
    )
    error_message = "Expected alarms on 5xx errors and on model latency (in microseconds)."
  }

  assert {
    condition = (
      aws_sagemaker_endpoint.this.deployment_config[0].blue_green_update_policy[0].traffic_routing_configuration[0].type == "CANARY" &&
      aws_sagemaker_endpoint.this.deployment_config[0].blue_green_update_policy[0].traffic_routing_configuration[0].canary_size[0].value == 25 &&
      toset([for alarm in aws_sagemaker_endpoint.this.deployment_config[0].auto_rollback_configuration[0].alarms : alarm.alarm_name]) == toset([aws_cloudwatch_metric_alarm.errors_5xx[0].alarm_name, aws_cloudwatch_metric_alarm.model_latency[0].alarm_name])
    )
    error_message = "A new model must roll out blue/green (a canary first) and roll back on the 5xx and latency alarms."
  }

  assert {
    condition     = aws_sagemaker_endpoint_configuration.this.production_variants[0].initial_instance_count == 1 && length(aws_sagemaker_endpoint_configuration.this.production_variants[0].serverless_config) == 0
    error_message = "An instance endpoint starts with min_capacity instances and has no serverless config."
  }
}

run "image_uri_overrides_the_prebuilt_lookup" {
  command = plan

  variables {
    image_uri = "123456789012.dkr.ecr.mx-central-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
  }

  assert {
    condition     = aws_sagemaker_model.this.primary_container[0].image == var.image_uri && length(data.aws_sagemaker_prebuilt_ecr_image.this) == 0
    error_message = "image_uri must replace the prebuilt-image lookup, which fails in regions the provider has no registry for."
  }
}

run "new_instance_type_re_registers_the_scalable_target" {
  command = plan

  variables {
    instance_type = "ml.c5.xlarge"
  }

  # Keyed by type, a changed type destroys the old target (deregistering it before the endpoint update,
  # which SageMaker otherwise rejects) and registers a new one after it.
  assert {
    condition     = keys(aws_appautoscaling_target.this) == ["ml.c5.xlarge"] && keys(aws_appautoscaling_policy.this) == ["ml.c5.xlarge"]
    error_message = "The scalable target and policy must be keyed by the instance type."
  }
}

run "roll_out_keeps_a_given_capacity" {
  command = plan

  variables {
    min_capacity           = 1
    initial_instance_count = 3
  }

  assert {
    condition     = aws_sagemaker_endpoint_configuration.this.production_variants[0].initial_instance_count == 3
    error_message = "initial_instance_count must size the new fleet of a roll-out."
  }
}

run "serverless_endpoint" {
  command = plan

  variables {
    mode                               = "serverless"
    enable_network_isolation           = false
    serverless_memory_size_mb          = 4096
    serverless_max_concurrency         = 20
    serverless_provisioned_concurrency = 2
  }

  assert {
    condition = (
      aws_sagemaker_endpoint_configuration.this.production_variants[0].serverless_config[0].memory_size_in_mb == 4096 &&
      aws_sagemaker_endpoint_configuration.this.production_variants[0].serverless_config[0].max_concurrency == 20 &&
      aws_sagemaker_endpoint_configuration.this.production_variants[0].serverless_config[0].provisioned_concurrency == 2 &&
      aws_sagemaker_endpoint_configuration.this.production_variants[0].instance_type == null &&
      aws_sagemaker_endpoint_configuration.this.kms_key_arn == null
    )
    error_message = "A serverless endpoint has a serverless config and no instance type or volume key."
  }

  assert {
    condition     = length(aws_appautoscaling_target.this) == 0 && length(aws_sagemaker_model.this.vpc_config) == 0
    error_message = "A serverless endpoint has no instance autoscaling and no VPC config."
  }
}

run "serverless_rejects_vpc_config" {
  command = plan

  variables {
    mode               = "serverless"
    subnet_ids         = ["subnet-0123456789abcdef0"]
    security_group_ids = ["sg-0123456789abcdef0"]
  }

  expect_failures = [aws_sagemaker_model.this]
}

run "serverless_rejects_gpu_images" {
  command = plan

  variables {
    mode                     = "serverless"
    enable_network_isolation = false
    image_tag                = "2.6.0-gpu-py312"
  }

  expect_failures = [aws_sagemaker_endpoint_configuration.this]
}

run "serverless_rejects_more_provisioned_than_max_concurrency" {
  command = plan

  variables {
    mode                               = "serverless"
    enable_network_isolation           = false
    serverless_max_concurrency         = 2
    serverless_provisioned_concurrency = 5
  }

  expect_failures = [var.serverless_provisioned_concurrency]
}

run "rejects_a_scale_out_cooldown_shorter_than_an_instance_start" {
  command = plan

  variables {
    scale_out_cooldown_seconds = 30
  }

  expect_failures = [var.scale_out_cooldown_seconds]
}

run "new_artifact_gets_a_new_model_name" {
  command = apply

  variables {
    model_data_url = "s3://unit-bucket/models/run-2/model.tar.gz"
  }

  assert {
    condition     = aws_sagemaker_model.this.name != run.first_artifact.model_name && aws_sagemaker_endpoint.this.name == "unit-endpoint"
    error_message = "A new artifact must get a new model name while the endpoint keeps its name."
  }
}

run "scaling_settings_pass_through" {
  command = apply

  variables {
    min_capacity                    = 2
    max_capacity                    = 6
    target_invocations_per_instance = 20
    scale_in_cooldown_seconds       = 900
    scale_out_cooldown_seconds      = 240
  }

  assert {
    condition = (
      aws_appautoscaling_target.this["ml.m5.large"].min_capacity == 2 && aws_appautoscaling_target.this["ml.m5.large"].max_capacity == 6 &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].target_value == 20 &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 900 &&
      aws_appautoscaling_policy.this["ml.m5.large"].target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 240
    )
    error_message = "Capacity, target and cooldowns must come from the variables."
  }
}

run "autoscaling_can_be_off" {
  command = apply

  variables {
    enable_autoscaling = false
  }

  assert {
    condition     = length(aws_appautoscaling_target.this) == 0 && length(aws_appautoscaling_policy.this) == 0 && output.scaling_policy_arn == null
    error_message = "enable_autoscaling = false must create no scaling target or policy."
  }
}

run "rejects_non_s3_artifact" {
  command = plan

  variables {
    model_data_url = "https://example.com/model.tar.gz"
  }

  expect_failures = [var.model_data_url]
}

run "rejects_max_below_min" {
  command = plan

  variables {
    min_capacity = 3
    max_capacity = 2
  }

  expect_failures = [var.max_capacity]
}

run "rejects_zero_min_capacity" {
  command = plan

  variables {
    min_capacity = 0
  }

  expect_failures = [var.min_capacity]
}

run "rejects_a_name_too_long_for_the_config_suffix" {
  command = plan

  variables {
    name = "an-endpoint-name-that-is-far-too-long-x"
  }

  expect_failures = [var.name]
}
