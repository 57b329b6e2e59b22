# The shared stack (modules/stack) with the settings an emulator needs: moto ignores bucket-policy
# conditions (a TLS-only deny would then deny everything), drops NewerNoncurrentVersions from
# lifecycle rules, has no detailed EC2 monitoring and no Deep Learning AMI parameters of today, and
# buckets must go away on destroy.

data "aws_caller_identity" "current" {}

# moto's catalogue holds an old Deep Learning AMI under the real DLAMI owner account, but not AWS's
# public DLAMI SSM parameters: look the AMI up by name instead.
data "aws_ami" "trainer" {
  most_recent = true
  owners      = ["898082745236"]

  filter {
    name   = "name"
    values = ["Deep Learning AMI Ubuntu*"]
  }
}

module "stack" {
  source = "../../modules/stack"

  name = var.name
  # The storage module's bucket name: the endpoint exists from the first apply here.
  model_data_url  = coalesce(var.model_data_url, "s3://${var.name}-${data.aws_caller_identity.current.account_id}-artifacts/models/local/model.tar.gz")
  lambda_zip_path = var.lambda_zip_path
  endpoint_mode   = var.endpoint_mode
  lambda_in_vpc   = var.lambda_in_vpc
  azs             = ["${var.region}a", "${var.region}b"]

  enable_trainer_host = true
  # Nothing runs the user data here; a package source keeps the "cannot install" warning quiet.
  trainer_package_s3_uri      = "s3://${var.name}-${data.aws_caller_identity.current.account_id}-artifacts/code/dogbreed_trainer-0.1.0-py3-none-any.whl"
  trainer_ami_id              = data.aws_ami.trainer.id
  trainer_detailed_monitoring = false

  enforce_tls                  = false
  force_destroy                = true
  kms_key_deletion_window_days = 7
  # moto drops NewerNoncurrentVersions from lifecycle rules, and the provider then waits for it forever.
  noncurrent_versions_to_keep = null
}
