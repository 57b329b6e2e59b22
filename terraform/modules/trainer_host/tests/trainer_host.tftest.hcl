mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = { id = "ami-0123456789abcdef0" }
  }
}

variables {
  name                      = "unit-trainer"
  subnet_id                 = "subnet-0123456789abcdef0"
  security_group_ids        = ["sg-0123456789abcdef0"]
  iam_instance_profile_name = "unit-trainer-profile"
  bucket_name               = "unit-bucket"
  trainer_package_s3_uri    = "s3://unit-bucket/code/dogbreed-0.1.0-py3-none-any.whl"
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
