# What an operator needs to run `dogbreed launch` (training and tuning jobs with the SageMaker role):
# output as a document to attach to the operators' own users or roles, which this stack does not manage.
locals {
  operator_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PassSageMakerRole"
        Effect   = "Allow"
        Action   = ["iam:PassRole"]
        Resource = [aws_iam_role.sagemaker.arn]
        Condition = {
          StringEquals = { "iam:PassedToService" = "sagemaker.amazonaws.com" }
        }
      },
      {
        Sid    = "RunTrainingAndTuningJobs"
        Effect = "Allow"
        Action = [
          "sagemaker:CreateTrainingJob",
          "sagemaker:CreateHyperParameterTuningJob",
          "sagemaker:DescribeTrainingJob",
          "sagemaker:DescribeHyperParameterTuningJob",
          "sagemaker:StopTrainingJob",
          "sagemaker:StopHyperParameterTuningJob",
          "sagemaker:AddTags",
        ]
        Resource = [
          "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:training-job/*",
          "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:hyper-parameter-tuning-job/*",
        ]
      },
      {
        Sid      = "ListJobs"
        Effect   = "Allow"
        Action   = ["sagemaker:ListTrainingJobs", "sagemaker:ListTrainingJobsForHyperParameterTuningJob", "sagemaker:ListHyperParameterTuningJobs"]
        Resource = ["*"] # List calls have no resource-level permissions.
      },
      {
        Sid      = "ReadJobLogs"
        Effect   = "Allow"
        Action   = ["logs:GetLogEvents", "logs:DescribeLogStreams"]
        Resource = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/TrainingJobs:*"]
      },
    ]
  })
}
