variable "name" {
  description = "Name of the Lambda function and the REST API."
  type        = string
}

variable "lambda_zip_path" {
  description = "Path of the inference Lambda deployment zip (`make lambda-zip` writes dist/inference_lambda.zip)."
  type        = string
}

variable "lambda_role_arn" {
  description = "ARN of the Lambda execution role (iam module)."
  type        = string
}

variable "handler" {
  description = "Handler of the Lambda function."
  type        = string
  default     = "inference_lambda.app.handler"
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.12"
}

variable "memory_size_mb" {
  description = "Memory of the Lambda function in MB (CPU scales with it)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Lambda timeout in seconds; below API Gateway's 29 s integration limit so the function, not the gateway, reports a slow endpoint."
  type        = number
  default     = 25

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds < 29
    error_message = "timeout_seconds must be between 1 and 28: API Gateway gives up on the integration after 29 s."
  }
}

variable "endpoint_name" {
  description = "Name of the SageMaker endpoint the function calls (ENDPOINT_NAME)."
  type        = string
}

variable "endpoint_timeout_seconds" {
  description = "Seconds the function waits for the endpoint's answer (ENDPOINT_TIMEOUT_SECONDS, the function's own default). With the URL fetch and endpoint connect timeouts (URL_FETCH_TIMEOUT_SECONDS, 3, and ENDPOINT_CONNECT_TIMEOUT_SECONDS, 2, unless set in environment) it must stay below timeout_seconds."
  type        = number
  default     = 10

  # Past the Lambda timeout a slow endpoint ends as Lambda's bare timeout error, not the API's endpoint_timeout.
  validation {
    condition = var.endpoint_timeout_seconds > 0 && (
      var.endpoint_timeout_seconds
      + try(tonumber(var.environment["URL_FETCH_TIMEOUT_SECONDS"]), 3)
      + try(tonumber(var.environment["ENDPOINT_CONNECT_TIMEOUT_SECONDS"]), 2)
    ) < var.timeout_seconds
    error_message = "endpoint_timeout_seconds + URL_FETCH_TIMEOUT_SECONDS (3) + ENDPOINT_CONNECT_TIMEOUT_SECONDS (2) must be below timeout_seconds, and endpoint_timeout_seconds above 0."
  }
}

variable "allowed_origins" {
  description = "Origins allowed by CORS (ALLOWED_ORIGINS, comma-joined); empty allows none."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "Extra environment variables of the function (see services/inference_lambda/README.md)."
  type        = map(string)
  default     = {}
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: caps the load the function can put on the endpoint."
  type        = number
  default     = 50

  validation {
    condition     = var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1 (0 would disable the function)."
  }
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrent executions of the live alias (no cold starts, billed hourly); 0 turns it off."
  type        = number
  default     = 0

  validation {
    condition     = var.provisioned_concurrency >= 0 && var.provisioned_concurrency <= var.reserved_concurrency
    error_message = "provisioned_concurrency must be between 0 and reserved_concurrency."
  }
}

variable "subnet_ids" {
  description = "Private subnets the function runs in; empty runs it outside your VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the function; used with subnet_ids."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the function's environment variables and the log groups; null uses AWS managed keys. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the function's logs and the API access logs are kept."
  type        = number
  default     = 365
}

variable "stage_name" {
  description = "Name of the API stage; it ends the invoke URL."
  type        = string
  default     = "prod"
}

variable "binary_media_types" {
  description = "Content types API Gateway passes to the function as binary (base64) bodies."
  type        = list(string)
  # The raw image types POST /predict accepts: services/inference_lambda/src/inference_lambda/media_types.json (a test checks they match).
  default = ["image/jpeg", "image/jpg", "image/png", "image/webp", "application/octet-stream", "application/x-image"]
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the stage accepts."
  type        = number
  default     = 50
}

variable "throttling_burst_limit" {
  description = "Burst of requests the stage accepts."
  type        = number
  default     = 100
}

variable "require_api_key" {
  description = "Create an API key and usage plan and require the key (x-api-key header) on every route."
  type        = bool
  default     = true
}

variable "quota_limit_per_day" {
  description = "Requests per day the usage plan allows the key; 0 for no quota."
  type        = number
  default     = 10000
}

variable "manage_account_cloudwatch_role" {
  description = "Set this region's API Gateway account CloudWatch role, which access logging needs. Turn off when the account already has one (the setting is shared by every API of the region)."
  type        = bool
  default     = true
}

variable "web_acl_arn" {
  description = "ARN of a WAFv2 web ACL (REGIONAL scope) to associate with the stage; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
