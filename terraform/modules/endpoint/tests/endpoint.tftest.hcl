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
    condition     = aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "SageMakerVariantInvocationsPerInstance"
    error_message = "The scaling policy must track SageMakerVariantInvocationsPerInstance."
  }

  assert {
    condition = (
      aws_appautoscaling_policy.this[0].policy_type == "TargetTrackingScaling" &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].target_value == 15 &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 300 &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 30
    )
    error_message = "The scaling policy must use the default target and cooldowns."
  }

  assert {
    condition = (
      aws_appautoscaling_target.this[0].resource_id == "endpoint/unit-endpoint/variant/AllTraffic" &&
      aws_appautoscaling_target.this[0].scalable_dimension == "sagemaker:variant:DesiredInstanceCount" &&
      aws_appautoscaling_target.this[0].min_capacity == 1 && aws_appautoscaling_target.this[0].max_capacity == 4
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
    scale_in_cooldown_seconds       = 25
    scale_out_cooldown_seconds      = 20
  }

  assert {
    condition = (
      aws_appautoscaling_target.this[0].min_capacity == 2 && aws_appautoscaling_target.this[0].max_capacity == 6 &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].target_value == 20 &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].scale_in_cooldown == 25 &&
      aws_appautoscaling_policy.this[0].target_tracking_scaling_policy_configuration[0].scale_out_cooldown == 20
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
