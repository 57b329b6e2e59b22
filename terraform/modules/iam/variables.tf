variable "name" {
  description = "Name prefix for the roles, policies and instance profile."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the data and model artifacts bucket (storage module)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the bucket (storage module)."
  type        = string
}

variable "data_prefix" {
  description = "Key prefix of the training data, with a trailing slash; the roles may only read below it."
  type        = string
  default     = "data/"
}

variable "model_prefix" {
  description = "Key prefix of the model artifacts, with a trailing slash; the roles may read and write below it."
  type        = string
  default     = "models/"
}

variable "code_prefix" {
  description = "Key prefix of the trainer package, with a trailing slash; the trainer host may read below it."
  type        = string
  default     = "code/"
}

variable "endpoint_name" {
  description = "Name of the SageMaker endpoint the Lambda function may invoke (its ARN is derived from it, so the endpoint need not exist yet)."
  type        = string
}

variable "lambda_function_name" {
  description = "Name of the inference Lambda function; scopes the Lambda role's log permissions to its log group."
  type        = string
}

variable "inference_image_repository_names" {
  description = "ECR repositories of the AWS prebuilt PyTorch images (inference, and training for dogbreed launch) the SageMaker role may pull from."
  type        = list(string)
  default     = ["pytorch-inference", "pytorch-training"]
}

variable "create_trainer_instance_profile" {
  description = "Create the trainer host's role and instance profile."
  type        = bool
  default     = true
}

variable "lambda_in_vpc" {
  description = "Grant the Lambda role the network interface permissions a function attached to a VPC needs."
  type        = bool
  default     = true
}

variable "sagemaker_in_vpc" {
  description = "Grant the SageMaker role the network interface permissions a model attached to a VPC needs."
  type        = bool
  default     = true
}

variable "trainer_status_parameter_name" {
  description = "SSM parameter the trainer host writes its set-up status to (trainer_host module); null grants nothing."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the workloads: the roles may create and delete network interfaces only in it (and its subnet_ids); null leaves the ENI statements unconditioned."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets the Lambda function and the endpoint may place network interfaces in."
  type        = list(string)
  default     = []
}

variable "permissions_boundary_arn" {
  description = "ARN of a permissions boundary attached to every role; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
