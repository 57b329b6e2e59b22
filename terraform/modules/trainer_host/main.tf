# AWS publishes the id of the newest Deep Learning AMI of each type as a public SSM parameter: no name
# filter to go stale when the Ubuntu or PyTorch version moves on, and never a deprecated AMI.
data "aws_ssm_parameter" "ami" {
  count = var.enabled && var.ami_id == null ? 1 : 0

  name = "/aws/service/deeplearning/ami/x86_64/${var.ami_type}/latest/ami-id"
}

data "aws_region" "current" {}

locals {
  ami_id = var.ami_id != null ? var.ami_id : one(data.aws_ssm_parameter.ami[*].insecure_value)

  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    bucket_name            = var.bucket_name
    data_prefix            = var.data_prefix
    model_prefix           = var.model_prefix
    data_dir               = var.data_dir
    trainer_package_s3_uri = var.trainer_package_s3_uri == null ? "" : var.trainer_package_s3_uri
    trainer_pip_spec       = var.trainer_pip_spec == null ? "" : var.trainer_pip_spec
    sync_data_on_boot      = var.sync_data_on_boot
    region                 = data.aws_region.current.name
    status_parameter_name  = var.status_parameter_name == null ? "" : var.status_parameter_name
  })
}

# The host overwrites it with "ok" or "failed: <step>" when its set-up ends (terraform keeps out of the value).
resource "aws_ssm_parameter" "status" {
  count = var.enabled && var.status_parameter_name != null ? 1 : 0

  name        = var.status_parameter_name
  description = "Set-up status of the ${var.name} trainer host: pending, ok or failed: <step> (log: /var/log/dogbreed-setup.log)"
  type        = "String"
  value       = "pending"

  tags = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_instance" "this" {
  count = var.enabled ? 1 : 0

  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = var.security_group_ids
  iam_instance_profile        = var.iam_instance_profile_name
  associate_public_ip_address = false
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  user_data                   = local.user_data
  user_data_replace_on_change = true

  # IMDSv2 only, and one network hop, so containers on the host cannot reach the role credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    kms_key_id            = var.root_volume_kms_key_arn
    delete_on_termination = true
  }

  tags        = merge(var.tags, { Name = var.name })
  volume_tags = merge(var.tags, { Name = var.name })

  lifecycle {
    # A newer Deep Learning AMI must not replace a host in the middle of a training run.
    ignore_changes = [ami]
  }

  # The status parameter exists before the host first writes to it.
  depends_on = [aws_ssm_parameter.status]
}
