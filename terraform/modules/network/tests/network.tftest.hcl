mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/unit-flow-logs" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vpc/unit/flow-logs" }
  }
}

variables {
  name = "unit"
  azs  = ["eu-west-1a", "eu-west-1b"]
}

run "private_only_by_default" {
  command = apply

  assert {
    condition     = length(aws_subnet.private) == 2 && alltrue([for subnet in aws_subnet.private : subnet.map_public_ip_on_launch == false])
    error_message = "Expected two private subnets that never assign public IPs."
  }

  assert {
    condition     = length(aws_subnet.public) == 0 && length(aws_internet_gateway.this) == 0 && length(aws_nat_gateway.this) == 0
    error_message = "Public subnets, an internet gateway or a NAT gateway exist although enable_nat_gateway is false."
  }

  assert {
    condition     = toset([for subnet in aws_subnet.private : subnet.availability_zone]) == toset(["eu-west-1a", "eu-west-1b"])
    error_message = "The private subnets are not spread over the two given zones."
  }

  assert {
    condition     = aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway" && aws_vpc_endpoint.s3.service_name == "com.amazonaws.eu-west-1.s3"
    error_message = "Expected an S3 gateway endpoint."
  }

  assert {
    condition     = length(aws_vpc_endpoint.interface) == 0
    error_message = "No interface endpoint by default: each costs about 7 USD a month per zone, so only what a workload uses is created."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.endpoints_https.from_port == 443 &&
      aws_vpc_security_group_ingress_rule.endpoints_https.to_port == 443 &&
      aws_vpc_security_group_ingress_rule.endpoints_https.referenced_security_group_id == aws_security_group.workloads.id &&
      aws_vpc_security_group_ingress_rule.endpoints_https.cidr_ipv4 == null
    )
    error_message = "The endpoints may only accept HTTPS from the workloads security group."
  }

  assert {
    condition     = length(aws_vpc_security_group_egress_rule.workloads_internet) == 0
    error_message = "Without a NAT gateway the workloads must not have an egress rule to the internet."
  }

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination == aws_cloudwatch_log_group.flow_logs.arn
    error_message = "Flow logs must record all traffic into the flow log group."
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must have no rules."
  }
}

run "interface_endpoints_when_named" {
  command = apply

  variables {
    interface_endpoint_services = ["ssm", "ssmmessages", "ec2messages"]
  }

  assert {
    condition     = toset(keys(aws_vpc_endpoint.interface)) == toset(["ssm", "ssmmessages", "ec2messages"])
    error_message = "Expected exactly the named interface endpoints."
  }

  assert {
    condition     = alltrue([for endpoint in aws_vpc_endpoint.interface : endpoint.private_dns_enabled && endpoint.vpc_endpoint_type == "Interface"])
    error_message = "Interface endpoints need private DNS so SDKs reach them under the service's normal name."
  }
}

run "flow_log_role_trusts_only_this_account" {
  command = plan

  assert {
    condition = (
      jsondecode(aws_iam_role.flow_logs.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] != null &&
      strcontains(jsondecode(aws_iam_role.flow_logs.assume_role_policy).Statement[0].Condition.ArnLike["aws:SourceArn"], ":vpc-flow-log/")
    )
    error_message = "The flow-log role's trust policy must be conditioned on aws:SourceAccount and aws:SourceArn (confused deputy)."
  }
}

run "nat_gateway_when_asked" {
  command = apply

  variables {
    enable_nat_gateway = true
  }

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_nat_gateway.this) == 1 && length(aws_route.private_nat) == 1
    error_message = "enable_nat_gateway must add public subnets, one NAT gateway and the private default route."
  }

  assert {
    condition     = aws_vpc_security_group_egress_rule.workloads_internet[0].from_port == 443 && aws_vpc_security_group_egress_rule.workloads_internet[0].to_port == 443
    error_message = "Internet egress of the workloads must be HTTPS only."
  }
}

run "rejects_a_single_zone" {
  command = plan

  variables {
    azs = ["eu-west-1a"]
  }

  expect_failures = [var.azs]
}

run "rejects_a_bad_cidr" {
  command = plan

  variables {
    cidr_block = "10.20.0.0"
  }

  expect_failures = [var.cidr_block]
}
