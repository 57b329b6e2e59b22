# Interface endpoints accept HTTPS from the private workloads and nothing else.
resource "aws_security_group" "endpoints" {
  name_prefix = "${var.name}-endpoints-"
  description = "Interface VPC endpoints: HTTPS from the private workloads only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-endpoints" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the private workloads"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.workloads.id
}

# The trainer host, the Lambda function and the SageMaker endpoint: no inbound rule at all
# (SSM Session Manager is outbound-only), outbound HTTPS to the endpoints and S3 only.
resource "aws_security_group" "workloads" {
  name_prefix = "${var.name}-workloads-"
  description = "Private workloads: no inbound, HTTPS out to VPC endpoints and S3"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-workloads" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "workloads_endpoints" {
  security_group_id            = aws_security_group.workloads.id
  description                  = "HTTPS to the interface VPC endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "workloads_s3" {
  security_group_id = aws_security_group.workloads.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "workloads_internet" {
  count = var.enable_nat_gateway ? 1 : 0

  security_group_id = aws_security_group.workloads.id
  description       = "HTTPS to the internet through the NAT gateway (package installs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
