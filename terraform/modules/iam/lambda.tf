resource "aws_iam_role" "lambda" {
  name_prefix          = "${substr(var.name, 0, 24)}-lambda-"
  description          = "Inference Lambda of ${var.name}: invoke and describe one endpoint, write its own logs"
  permissions_boundary = var.permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })

  tags = var.tags
}

locals {
  lambda_vpc_statements = [
    {
      Sid      = "DescribeNetwork"
      Effect   = "Allow"
      Action   = ["ec2:DescribeNetworkInterfaces"]
      Resource = ["*"] # Describe calls have no resource-level permissions.
    },
    merge({
      Sid    = "ManageFunctionNetworkInterfaces"
      Effect = "Allow"
      Action = [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      Resource = local.eni_resource_arns_scoped
    }, local.eni_condition),
  ]

  lambda_statements = concat([
    {
      # The only SageMaker permissions: invoke this one endpoint, and describe it for GET /health.
      Sid      = "InvokeAndDescribeEndpoint"
      Effect   = "Allow"
      Action   = ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
      Resource = [local.endpoint_arn]
    },
    {
      Sid      = "WriteFunctionLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.lambda_log_group_arn}:*"]
    },
    {
      Sid      = "WriteTraces"
      Effect   = "Allow"
      Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      Resource = ["*"] # X-Ray has no resource-level permissions for these calls.
    },
  ], [for statement in local.lambda_vpc_statements : statement if var.lambda_in_vpc])

  lambda_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.lambda_statements
  })
}

resource "aws_iam_role_policy" "lambda" {
  name   = "invoke-endpoint-and-log"
  role   = aws_iam_role.lambda.id
  policy = local.lambda_policy
}
