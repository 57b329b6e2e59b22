data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  data_objects_arn  = "${var.bucket_arn}/${var.data_prefix}*"
  model_objects_arn = "${var.bucket_arn}/${var.model_prefix}*"
  code_objects_arn  = "${var.bucket_arn}/${var.code_prefix}*"

  # SageMaker writes endpoint ARNs in lower case whatever the case of the name.
  endpoint_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint/${lower(var.endpoint_name)}"

  lambda_log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.lambda_function_name}"

  eni_resource_arns = [
    "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*",
    "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/*",
    "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*",
  ]

  # Network interfaces only in this VPC: ec2:Vpc is set for network interfaces, subnets and security
  # groups alike, and the subnets are named too, so no other subnet of the VPC is usable either.
  eni_condition = {
    for key, value in {
      Condition = { ArnEquals = { "ec2:Vpc" = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${coalesce(var.vpc_id, "none")}" } }
    } : key => value if var.vpc_id != null
  }
  eni_subnet_arns = [for id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"]
  eni_resource_arns_scoped = length(var.subnet_ids) == 0 ? local.eni_resource_arns : concat(
    [
      "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*",
      "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*",
    ],
    local.eni_subnet_arns,
  )

  # Network interface actions that cannot be scoped to a resource.
  eni_describe_actions = [
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeDhcpOptions",
  ]
}
