# One run per command the READMEs tell a user to run, with exactly their variables, asserting on what the
# plan would create. No -target anywhere: each flow is a plain `terraform apply`.
mock_provider "aws" {
  source = "../../tests/mocks/stack" # shared with the other of modules/stack and envs/aws
}

variables {
  lambda_zip_path = "../../modules/api/tests/fixtures/lambda.zip"
}

# README step 1: `terraform apply` with no model yet.
run "first_apply_without_a_model" {
  command = apply

  assert {
    condition     = output.bucket_name == "dogbreed-123456789012-artifacts" && output.sagemaker_role_arn != null
    error_message = "The first apply must create the bucket and the SageMaker role (dogbreed launch needs both)."
  }

  assert {
    condition     = output.endpoint_name == null && output.api_url == null && output.api_key == null
    error_message = "Without model_data_url there must be no endpoint and no API (an endpoint without a model fails to start)."
  }

  assert {
    condition     = length(module.stack.nat_gateway_ids) == 0 && length(module.stack.interface_endpoint_services) == 0
    error_message = "By default nothing in the VPC needs the internet or interface endpoints: no NAT and none of the 58 USD/month of SSM/logs endpoints."
  }

  assert {
    condition     = output.trainer_instance_id == null
    error_message = "The trainer host is off by default."
  }

  assert {
    condition = anytrue([
      for statement in jsondecode(output.operator_policy_json).Statement :
      statement.Action == ["iam:PassRole"] && statement.Resource == [output.sagemaker_role_arn]
    ])
    error_message = "The stack must output the policy an operator needs for dogbreed launch."
  }
}

# README: the GPU host, exactly as documented (no -target). Applied, so the next run plans from a state
# that holds the host, its NAT gateway and its endpoints.
run "trainer_host_on" {
  command = apply

  variables {
    enable_trainer_host    = true
    enable_nat_gateway     = true
    trainer_package_s3_uri = "s3://dogbreed-123456789012-artifacts/code/dogbreed_trainer-0.1.0-py3-none-any.whl"
  }

  assert {
    condition     = length(module.stack.nat_gateway_ids) == 1
    error_message = "The host's flow must plan the NAT gateway (and its route): pip needs PyPI."
  }

  assert {
    condition     = toset(module.stack.interface_endpoint_services) == toset(["ssm", "ssmmessages", "ec2messages", "logs"])
    error_message = "The host needs the SSM (Session Manager) and CloudWatch Logs interface endpoints."
  }

  assert {
    condition = (
      strcontains(module.stack.trainer_policy_json, "s3:GetObject") &&
      strcontains(module.stack.trainer_policy_json, "/code/*") &&
      strcontains(module.stack.trainer_policy_json, "ssm:PutParameter")
    )
    error_message = "The host's role must carry its bucket policy (data, models, code) and may report its set-up status."
  }

  assert {
    condition     = output.trainer_status_parameter == "/dogbreed/trainer/setup-status"
    error_message = "The README points at the set-up status parameter."
  }

  assert {
    condition     = strcontains(module.stack.trainer_user_data, "AWS_DEFAULT_REGION=\"us-east-1\"")
    error_message = "The host's user data must set the region."
  }
}

# README: switching the host off must also remove the NAT and the SSM endpoints (planned from the state above).
run "trainer_host_off" {
  command = plan

  variables {
    enable_trainer_host = false
    enable_nat_gateway  = false
  }

  assert {
    condition     = output.trainer_instance_id == null && length(module.stack.nat_gateway_ids) == 0 && length(module.stack.interface_endpoint_services) == 0
    error_message = "Switching the host off must leave no instance, no NAT and no interface endpoints."
  }
}

# README step 4: serve the model.
run "serve_a_model" {
  command = apply

  variables {
    model_data_url = "s3://dogbreed-123456789012-artifacts/models/run-1/output/model.tar.gz"
  }

  assert {
    condition     = output.api_url == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    error_message = "api_url must be the stage URL without a trailing slash."
  }

  assert {
    condition     = output.api_key == "secret-key-value" && output.api_key_id == "key123"
    error_message = "api_key and api_key_id must come from the API key."
  }

  assert {
    condition     = output.endpoint_name == "dogbreed-endpoint"
    error_message = "endpoint_name must be the stack's."
  }

  assert {
    condition     = module.stack.endpoint_kms_key_arn == "arn:aws:kms:us-east-1:123456789012:key/unit"
    error_message = "An EBS-only instance type gets the stack's key for its ML volumes."
  }

  assert {
    condition     = output.alarm_topic_arn != null
    error_message = "Without alarm_actions the alarms must notify a topic of the stack's own, not nobody."
  }

  assert {
    condition = (
      !strcontains(module.stack.lambda_policy_json, "ec2:CreateNetworkInterface") &&
      length(module.stack.interface_endpoint_services) == 0
    )
    error_message = "Outside the VPC the Lambda role needs no ENI permissions and the VPC no SageMaker runtime or X-Ray endpoints."
  }
}

# README: a VPC-attached Lambda, with NAT for URL mode.
run "lambda_in_vpc_with_nat" {
  command = plan

  variables {
    model_data_url     = "s3://dogbreed-123456789012-artifacts/models/run-1/output/model.tar.gz"
    lambda_in_vpc      = true
    enable_nat_gateway = true
  }

  assert {
    condition     = strcontains(module.stack.lambda_policy_json, "ec2:CreateNetworkInterface") && strcontains(module.stack.lambda_policy_json, "ec2:Vpc")
    error_message = "lambda_in_vpc = true must grant its role the ENI permissions, conditioned on the VPC."
  }

  assert {
    condition     = toset(module.stack.interface_endpoint_services) == toset(["sagemaker.runtime", "xray"])
    error_message = "A VPC-attached Lambda reaches the SageMaker runtime and X-Ray through interface endpoints, and needs no SSM ones."
  }
}

# README: the serverless endpoint.
run "serverless_endpoint" {
  command = plan

  variables {
    model_data_url = "s3://dogbreed-123456789012-artifacts/models/run-1/output/model.tar.gz"
    endpoint_mode  = "serverless"
  }

  assert {
    condition     = module.stack.endpoint_kms_key_arn == null && module.stack.scaling_policy_arn == null
    error_message = "A serverless endpoint has no volume key and no instance autoscaling."
  }

  assert {
    condition     = !strcontains(module.stack.sagemaker_policy_json, "ec2:CreateNetworkInterface")
    error_message = "A serverless endpoint runs outside the VPC, so its role needs no ENI permissions."
  }
}
