# Bucket access shared by the SageMaker role and the trainer host: read the data prefix,
# read and write the model prefix, list only those prefixes, use the bucket key through S3.
locals {
  bucket_access_statements = [
    {
      Sid      = "ReadTrainingData"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = [local.data_objects_arn]
    },
    {
      Sid      = "ReadWriteModelArtifacts"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
      Resource = [local.model_objects_arn]
    },
    {
      Sid      = "ListDataAndModelPrefixes"
      Effect   = "Allow"
      Action   = ["s3:ListBucket"]
      Resource = [var.bucket_arn]
      Condition = {
        StringLike = {
          "s3:prefix" = [var.data_prefix, "${var.data_prefix}*", var.model_prefix, "${var.model_prefix}*"]
        }
      }
    },
    {
      Sid      = "UseBucketKey"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = [var.kms_key_arn]
      Condition = {
        StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" }
      }
    },
  ]
}
