data "aws_availability_zones" "available" {
  count = var.azs == null ? 1 : 0

  state = "available"
}

locals {
  azs = var.azs != null ? var.azs : slice(data.aws_availability_zones.available[0].names, 0, 2)

  # /20 subnets: private ones from the bottom of the range, public ones from the top.
  private_subnet_cidrs = [for index, _ in local.azs : cidrsubnet(var.cidr_block, 4, index)]
  public_subnet_cidrs  = [for index, _ in local.azs : cidrsubnet(var.cidr_block, 4, 15 - index)]
}

resource "aws_vpc" "this" {
  cidr_block = var.cidr_block
  # Interface endpoints with private DNS need both.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# Adopt the default security group and strip every rule from it, so nothing lands in it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.private_subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}", Tier = "private" })
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}
