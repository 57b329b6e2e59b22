resource "aws_iam_role" "sagemaker" {
  name_prefix          = "${substr(var.name, 0, 24)}-sagemaker-"
  description          = "SageMaker execution role of ${var.name}: its bucket prefixes, its image, its logs"
  permissions_boundary = var.permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "sagemaker.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = var.tags
}

locals {
  sagemaker_vpc_statements = [
    {
      Sid      = "DescribeNetwork"
      Effect   = "Allow"
      Action   = local.eni_describe_actions
      Resource = ["*"] # Describe calls have no resource-level permissions.
    },
    merge({
      Sid    = "ManageEndpointNetworkInterfaces"
      Effect = "Allow"
      Action = [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
      ]
      Resource = local.eni_resource_arns_scoped
    }, local.eni_condition),
  ]

  sagemaker_statements = concat(local.bucket_access_statements, [
    {
      # The endpoint's ML storage volumes are encrypted with the stack's key: SageMaker describes it and
      # creates grants for the volumes (AWS's documented permissions for a volume KMS key).
      Sid      = "EncryptEndpointVolumes"
      Effect   = "Allow"
      Action   = ["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"]
      Resource = [var.kms_key_arn]
      Condition = {
        StringEquals = { "kms:ViaService" = ["sagemaker.${local.region}.amazonaws.com", "ec2.${local.region}.amazonaws.com"] }
      }
    },
    {
      Sid      = "EcrAuthorization"
      Effect   = "Allow"
      Action   = ["ecr:GetAuthorizationToken"]
      Resource = ["*"] # GetAuthorizationToken has no resource-level permissions.
    },
    {
      Sid    = "PullInferenceImage"
      Effect = "Allow"
      Action = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      # The prebuilt images live in AWS-owned registries whose account differs per region.
      Resource = [for repository in var.inference_image_repository_names : "arn:${local.partition}:ecr:${local.region}:*:repository/${repository}"]
    },
    {
      Sid    = "WriteEndpointLogs"
      Effect = "Allow"
      Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
      Resource = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/*:log-stream:*",
      ]
    },
    {
      Sid      = "PublishSageMakerMetrics"
      Effect   = "Allow"
      Action   = ["cloudwatch:PutMetricData"]
      Resource = ["*"] # PutMetricData has no resource-level permissions; the namespace condition scopes it.
      Condition = {
        StringLike = { "cloudwatch:namespace" = ["/aws/sagemaker/*", "aws/sagemaker/*"] }
      }
    },
  ], [for statement in local.sagemaker_vpc_statements : statement if var.sagemaker_in_vpc])
}

locals {
  sagemaker_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.sagemaker_statements
  })
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "bucket-image-logs"
  role   = aws_iam_role.sagemaker.id
  policy = local.sagemaker_policy
}
