# A VPC-attached function gets a security group of its own: nothing else shares it, so the
# replace-on-destroy swap in main.tf frees it at once, and its rules are only what the function needs.
resource "aws_security_group" "lambda" {
  count = length(var.subnet_ids) > 0 ? 1 : 0

  name_prefix = "${var.name}-lambda-"
  description = "Inference Lambda: no inbound, HTTPS out (VPC endpoints, and URL fetches through NAT)"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-lambda" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "lambda_endpoints" {
  for_each = length(var.subnet_ids) > 0 ? toset(var.egress_security_group_ids) : toset([])

  security_group_id            = aws_security_group.lambda[0].id
  description                  = "HTTPS to the interface VPC endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}

# URL mode fetches public https images (through NAT); without NAT there is no route, so this opens nothing.
resource "aws_vpc_security_group_egress_rule" "lambda_internet" {
  count = length(var.subnet_ids) > 0 ? 1 : 0

  security_group_id = aws_security_group.lambda[0].id
  description       = "HTTPS to the internet (URL mode, through the NAT gateway)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
