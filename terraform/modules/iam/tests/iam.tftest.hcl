mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
}

variables {
  name                 = "unit"
  bucket_arn           = "arn:aws:s3:::unit-bucket"
  kms_key_arn          = "arn:aws:kms:eu-west-1:123456789012:key/unit"
  endpoint_name        = "Unit-Endpoint"
  lambda_function_name = "unit-api"
}

run "lambda_may_invoke_only_its_endpoint" {
  command = apply

  assert {
    # Every statement that grants any sagemaker action grants exactly InvokeEndpoint and DescribeEndpoint
    # (GET /health) on this endpoint.
    condition = [
      for statement in jsondecode(aws_iam_role_policy.lambda.policy).Statement : {
        actions   = statement.Action
        resources = statement.Resource
      } if anytrue([for action in statement.Action : startswith(action, "sagemaker:")])
      ] == [{
        actions   = ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
        resources = ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint/unit-endpoint"]
    }]
    error_message = "The Lambda policy must allow sagemaker:InvokeEndpoint and sagemaker:DescribeEndpoint on this endpoint's ARN (lower case) and no other sagemaker action."
  }

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.lambda.policy).Statement :
      alltrue([for resource in statement.Resource : resource == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/unit-api:*"])
      if anytrue([for action in statement.Action : startswith(action, "logs:")])
    ])
    error_message = "The Lambda may only write to its own log group."
  }

  assert {
    condition     = !strcontains(aws_iam_role_policy.lambda.policy, "s3:")
    error_message = "The Lambda has no business with the bucket."
  }
}

run "bucket_access_is_scoped_to_prefixes" {
  command = apply

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.sagemaker.policy).Statement :
      statement.Resource == ["arn:aws:s3:::unit-bucket/models/*"]
      if contains(statement.Action, "s3:PutObject")
    ])
    error_message = "The SageMaker role may write below the model prefix only."
  }

  assert {
    condition = toset(flatten([
      for statement in jsondecode(aws_iam_role_policy.sagemaker.policy).Statement :
      statement.Resource if contains(statement.Action, "s3:GetObject")
    ])) == toset(["arn:aws:s3:::unit-bucket/data/*", "arn:aws:s3:::unit-bucket/models/*"])
    error_message = "The SageMaker role may read the data and model prefixes only."
  }

  assert {
    condition = alltrue(flatten([
      for document in [aws_iam_role_policy.sagemaker.policy, aws_iam_role_policy.lambda.policy, aws_iam_role_policy.trainer[0].policy] : [
        for statement in jsondecode(document).Statement :
        !anytrue([for action in statement.Action : action == "*" || endswith(action, ":*")])
      ]
    ]))
    error_message = "No policy may grant a wildcard action."
  }

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.trainer[0].policy).Statement :
      alltrue([for resource in statement.Resource : startswith(resource, "arn:aws:s3:::unit-bucket/") || resource == "arn:aws:s3:::unit-bucket"])
      if anytrue([for action in statement.Action : startswith(action, "s3:")])
    ])
    error_message = "The trainer host may only touch this bucket."
  }
}

run "trainer_uses_ssm_core_and_no_full_access_policy" {
  command = apply

  assert {
    condition     = aws_iam_role_policy_attachment.trainer_ssm[0].policy_arn == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    error_message = "The trainer host needs the SSM core policy for Session Manager."
  }

  assert {
    condition     = !strcontains(aws_iam_role_policy_attachment.trainer_ssm[0].policy_arn, "FullAccess")
    error_message = "No AWS managed FullAccess policy may be attached."
  }

  assert {
    condition     = aws_iam_instance_profile.trainer[0].role == aws_iam_role.trainer[0].name
    error_message = "The instance profile must carry the trainer role."
  }
}

run "trainer_profile_can_be_left_out" {
  command = apply

  variables {
    create_trainer_instance_profile = false
  }

  assert {
    condition     = length(aws_iam_role.trainer) == 0 && output.trainer_instance_profile_name == null
    error_message = "create_trainer_instance_profile = false must create no trainer role or profile."
  }
}

run "network_interfaces_only_in_this_vpc" {
  command = plan

  variables {
    vpc_id     = "vpc-0abc"
    subnet_ids = ["subnet-0a", "subnet-0b"]
  }

  assert {
    condition = alltrue(flatten([
      for document in [aws_iam_role_policy.lambda.policy, aws_iam_role_policy.sagemaker.policy] : [
        for statement in jsondecode(document).Statement :
        statement.Condition.ArnEquals["ec2:Vpc"] == "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0abc" &&
        !contains(statement.Resource, "arn:aws:ec2:eu-west-1:123456789012:subnet/*") &&
        contains(statement.Resource, "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0a")
        if contains(statement.Action, "ec2:CreateNetworkInterface")
      ]
    ]))
    error_message = "ENI permissions must be conditioned on this VPC (ec2:Vpc) and name its subnets, not every subnet of the region."
  }
}

run "sagemaker_may_use_the_volume_key" {
  command = plan

  assert {
    condition = anytrue([
      for statement in jsondecode(aws_iam_role_policy.sagemaker.policy).Statement :
      contains(statement.Action, "kms:CreateGrant") && contains(statement.Action, "kms:DescribeKey") && statement.Resource == [var.kms_key_arn]
    ])
    error_message = "The SageMaker role needs kms:CreateGrant and kms:DescribeKey on the endpoint's volume key."
  }
}

run "operator_policy_for_dogbreed_launch" {
  command = apply

  assert {
    condition = anytrue([
      for statement in jsondecode(output.operator_policy_json).Statement :
      statement.Action == ["iam:PassRole"] && statement.Resource == [aws_iam_role.sagemaker.arn] &&
      try(statement.Condition.StringEquals["iam:PassedToService"], "") == "sagemaker.amazonaws.com"
    ])
    error_message = "The operator policy must allow iam:PassRole on the SageMaker role, to SageMaker only."
  }

  assert {
    condition = anytrue([
      for statement in jsondecode(output.operator_policy_json).Statement :
      contains(statement.Action, "sagemaker:CreateTrainingJob") && contains(statement.Action, "sagemaker:CreateHyperParameterTuningJob") &&
      contains(statement.Action, "sagemaker:DescribeTrainingJob") && contains(statement.Action, "sagemaker:DescribeHyperParameterTuningJob")
    ])
    error_message = "The operator policy must allow creating and describing training and tuning jobs."
  }
}

run "trainer_may_report_its_status" {
  command = plan

  variables {
    trainer_status_parameter_name = "/unit/trainer/setup-status"
  }

  assert {
    condition = anytrue([
      for statement in jsondecode(aws_iam_role_policy.trainer[0].policy).Statement :
      statement.Action == ["ssm:PutParameter"] && statement.Resource == ["arn:aws:ssm:eu-west-1:123456789012:parameter/unit/trainer/setup-status"]
    ])
    error_message = "The trainer role may write its set-up status parameter, and only that one."
  }
}
