resource "aws_iam_role" "trainer" {
  count = var.create_trainer_instance_profile ? 1 : 0

  name_prefix          = "${substr(var.name, 0, 24)}-trainer-"
  description          = "Trainer host of ${var.name}: its bucket prefixes and SSM Session Manager"
  permissions_boundary = var.permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })

  tags = var.tags
}

locals {
  trainer_statements = concat(local.bucket_access_statements, [{
    Sid      = "ReadTrainerPackage"
    Effect   = "Allow"
    Action   = ["s3:GetObject"]
    Resource = [local.code_objects_arn]
    }], var.trainer_status_parameter_name == null ? [] : [{
    Sid      = "ReportSetupStatus"
    Effect   = "Allow"
    Action   = ["ssm:PutParameter"]
    Resource = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(var.trainer_status_parameter_name, "/")}"]
  }])
}

resource "aws_iam_role_policy" "trainer" {
  count = var.create_trainer_instance_profile ? 1 : 0

  name = "bucket-access"
  role = aws_iam_role.trainer[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.trainer_statements
  })
}

# AWS's minimal policy for the SSM agent (Session Manager instead of SSH); not a FullAccess policy.
resource "aws_iam_role_policy_attachment" "trainer_ssm" {
  count = var.create_trainer_instance_profile ? 1 : 0

  role       = aws_iam_role.trainer[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "trainer" {
  count = var.create_trainer_instance_profile ? 1 : 0

  name_prefix = "${substr(var.name, 0, 24)}-trainer-"
  role        = aws_iam_role.trainer[0].name

  tags = var.tags
}
