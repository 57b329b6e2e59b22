mock_provider "aws" {
  mock_data "aws_ssm_parameter" {
    defaults = { insecure_value = "ami-0123456789abcdef0", value = "ami-0123456789abcdef0" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
}

variables {
  name                      = "unit-trainer"
  subnet_id                 = "subnet-0123456789abcdef0"
  security_group_ids        = ["sg-0123456789abcdef0"]
  iam_instance_profile_name = "unit-trainer-profile"
  bucket_name               = "unit-bucket"
  trainer_package_s3_uri    = "s3://unit-bucket/code/dogbreed-0.1.0-py3-none-any.whl"
  status_parameter_name     = "/unit/trainer/setup-status"
}

run "private_host_with_imdsv2_and_encrypted_root" {
  command = apply

  assert {
    condition     = aws_instance.this[0].associate_public_ip_address == false
    error_message = "The trainer host must not get a public IP."
  }

  assert {
    condition     = aws_instance.this[0].metadata_options[0].http_tokens == "required" && aws_instance.this[0].metadata_options[0].http_put_response_hop_limit == 1
    error_message = "IMDSv2 must be required, with one hop."
  }

  assert {
    condition     = aws_instance.this[0].root_block_device[0].encrypted
    error_message = "The root volume must be encrypted."
  }

  assert {
    condition     = aws_instance.this[0].instance_type == "g4dn.xlarge" && aws_instance.this[0].ami == "ami-0123456789abcdef0"
    error_message = "Expected the default GPU type and the looked-up Deep Learning AMI."
  }

  assert {
    condition     = data.aws_ssm_parameter.ami[0].name == "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10-ubuntu-24.04/latest/ami-id"
    error_message = "The AMI must come from AWS's public DLAMI SSM parameter of ami_type (a name filter goes stale when the Ubuntu version moves on)."
  }

  assert {
    condition     = strcontains(output.user_data, "export AWS_DEFAULT_REGION=\"eu-west-1\"") && strcontains(output.user_data, "/etc/profile.d/dogbreed-region.sh")
    error_message = "User data must set the region (botocore does not read it from IMDS) for itself and for later shells."
  }

  assert {
    condition     = strcontains(output.user_data, "pip install --no-deps") && strcontains(output.user_data, "\"torch\", \"torchvision\"")
    error_message = "User data must keep the AMI's CUDA-matched torch: install the trainer without deps, then its deps except torch/torchvision."
  }

  assert {
    condition = (
      aws_ssm_parameter.status[0].name == "/unit/trainer/setup-status" && aws_ssm_parameter.status[0].value == "pending" &&
      strcontains(output.user_data, "aws ssm put-parameter --name \"/unit/trainer/setup-status\"") &&
      strcontains(output.user_data, "report \"ok\"") && strcontains(output.user_data, "trap 'report \"failed: $step")
    )
    error_message = "The set-up must report pending, then ok or failed: <step>, in its SSM parameter."
  }

  assert {
    condition     = aws_instance.this[0].iam_instance_profile == "unit-trainer-profile" && aws_instance.this[0].subnet_id == "subnet-0123456789abcdef0"
    error_message = "The host must run in the given private subnet with the given instance profile."
  }

  assert {
    condition     = strcontains(output.user_data, "aws s3 cp \"s3://unit-bucket/code/dogbreed-0.1.0-py3-none-any.whl\"") && strcontains(output.user_data, "mkdir -p \"/data\"")
    error_message = "User data must install the trainer package from S3 and create the data folder."
  }
}

run "switched_off" {
  command = apply

  variables {
    enabled = false
  }

  assert {
    condition     = length(aws_instance.this) == 0 && output.instance_id == null
    error_message = "enabled = false must create no instance."
  }
}

run "accepts_other_gpu_families" {
  command = plan

  variables {
    instance_type = "p4d.24xlarge"
  }

  assert {
    condition     = aws_instance.this[0].instance_type == "p4d.24xlarge"
    error_message = "p4d is a GPU family and must be accepted."
  }
}

run "rejects_cpu_instance_type" {
  command = plan

  variables {
    instance_type = "m5.xlarge"
  }

  expect_failures = [var.instance_type]
}

run "rejects_burstable_instance_type" {
  command = plan

  variables {
    instance_type = "t3.large"
  }

  expect_failures = [var.instance_type]
}

run "requires_an_instance_profile" {
  command = plan

  variables {
    iam_instance_profile_name = null
  }

  expect_failures = [var.iam_instance_profile_name]
}
