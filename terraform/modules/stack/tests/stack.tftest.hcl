# The composition's decisions: what exists for which inputs, checked on the planned values.
mock_provider "aws" {
  source = "../../tests/mocks/stack" # shared with the other of modules/stack and envs/aws
}

variables {
  lambda_zip_path = "../api/tests/fixtures/lambda.zip"
  model_data_url  = "s3://dogbreed-123456789012-artifacts/models/run-1/model.tar.gz"
}

run "defaults_fit_a_new_account" {
  command = apply

  assert {
    condition     = module.api[0].function_name == "dogbreed-api" && length(module.endpoint) == 1
    error_message = "With model_data_url set, the endpoint and the API exist."
  }

  assert {
    condition     = var.reserved_concurrency == null && !var.manage_api_gateway_account_role
    error_message = "No reserved concurrency (new accounts with a limit of 10 cannot reserve 50) and the region's API Gateway role left alone by default."
  }

  assert {
    condition     = !local.endpoint_has_instance_store && local.endpoint_kms_key_arn == module.storage.kms_key_arn
    error_message = "ml.m5.large has EBS volumes only, encrypted with the stack's key."
  }

  assert {
    condition     = !contains(keys(module.api[0].environment), "ENDPOINT_PAYLOAD") && module.api[0].environment["ENDPOINT_TIMEOUT_SECONDS"] == "10"
    error_message = "An instance endpoint gets base64 JSON (6 MB limit) and the 10 s endpoint timeout."
  }
}

run "nvme_instance_types_get_no_volume_key" {
  command = plan

  variables {
    endpoint_instance_type = "ml.p5e.48xlarge"
    image_tag              = "2.6.0-gpu-py312"
  }

  override_data {
    target = data.aws_ec2_instance_type.endpoint[0]
    values = { instance_storage_supported = true }
  }

  assert {
    condition     = data.aws_ec2_instance_type.endpoint[0].instance_type == "p5e.48xlarge" && local.endpoint_kms_key_arn == null
    error_message = "The instance-store decision must come from the EC2 catalogue (p5e, trn1, *6gd, ... have NVMe volumes, which refuse a KMS key)."
  }
}

run "instance_storage_can_be_given" {
  command = plan

  variables {
    endpoint_instance_type    = "ml.trn1.2xlarge"
    endpoint_instance_storage = true
  }

  assert {
    condition     = length(data.aws_ec2_instance_type.endpoint) == 0 && local.endpoint_kms_key_arn == null
    error_message = "endpoint_instance_storage must override the catalogue lookup."
  }
}

run "serverless_runs_outside_the_vpc" {
  command = plan

  variables {
    endpoint_mode = "serverless"
  }

  assert {
    condition     = length(data.aws_ec2_instance_type.endpoint) == 0 && local.endpoint_kms_key_arn == null
    error_message = "A serverless endpoint takes no volume key."
  }

  assert {
    condition     = module.api[0].function_name == "dogbreed-api"
    error_message = "The API fronts a serverless endpoint too."
  }

  assert {
    condition = (
      module.api[0].environment["ENDPOINT_PAYLOAD"] == "raw" &&
      module.api[0].environment["ENDPOINT_MAX_PAYLOAD_BYTES"] == "4194304" &&
      module.api[0].environment["ENDPOINT_TIMEOUT_SECONDS"] == "19"
    )
    error_message = "In serverless mode the function must send raw image bytes under the 4 MB limit and wait out a cold start."
  }
}

run "given_alarm_topics_replace_the_stack_topic" {
  command = plan

  variables {
    alarm_actions = ["arn:aws:sns:us-east-1:123456789012:ops"]
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 0 && tolist(local.alarm_actions) == tolist(["arn:aws:sns:us-east-1:123456789012:ops"])
    error_message = "alarm_actions must be used as given, without a topic of the stack's own."
  }
}

run "alarm_emails_subscribe_to_the_stack_topic" {
  command = plan

  variables {
    alarm_emails = ["ops@example.com"]
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 1 && aws_sns_topic_subscription.alarm_emails["ops@example.com"].protocol == "email"
    error_message = "alarm_emails must be subscribed to the stack's alarm topic."
  }
}

run "lambda_in_vpc_gets_its_own_group_and_endpoint_access" {
  command = plan

  variables {
    lambda_in_vpc      = true
    enable_nat_gateway = true
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.endpoints_from_lambda) == 1
    error_message = "The interface endpoints must accept HTTPS from the function's own security group."
  }
}

run "lambda_in_vpc_without_nat_warns" {
  command = plan

  variables {
    lambda_in_vpc = true
  }

  # A check block failing is a warning: the plan still succeeds.
  expect_failures = [check.lambda_in_vpc_reaches_the_internet]
}

run "trainer_host_without_a_package_source_warns" {
  command = plan

  variables {
    enable_trainer_host = true
  }

  expect_failures = [check.trainer_host_can_install_its_package]
}
