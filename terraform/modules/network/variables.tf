variable "name" {
  description = "Name prefix for every resource of the network."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be an IPv4 CIDR block such as 10.20.0.0/16."
  }
}

variable "azs" {
  description = "Availability zones for the subnets; null picks the first two available zones of the region."
  type        = list(string)
  default     = null

  validation {
    condition     = var.azs == null || length(coalesce(var.azs, [])) >= 2
    error_message = "azs must name at least two availability zones, so the endpoints and subnets survive the loss of one."
  }
}

variable "enable_nat_gateway" {
  description = "Create public subnets, an internet gateway and one NAT gateway so private workloads reach the internet (for example pip installs on the trainer host). Off by default: everything the stack needs is reached through VPC endpoints."
  type        = bool
  default     = false
}

variable "interface_endpoint_services" {
  description = "AWS services reached through interface VPC endpoints from the private subnets (the service part of com.amazonaws.<region>.<service>)."
  type        = list(string)
  # None by default: each costs about 7 USD a month per zone, so the caller names what its workloads use.
  default = []
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "flow_log_traffic_type" {
  description = "Which traffic the flow logs record: ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the flow log group; null uses the CloudWatch Logs default encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
