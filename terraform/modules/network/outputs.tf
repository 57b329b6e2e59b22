output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones the subnets are in."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "IDs of the public subnets; empty unless enable_nat_gateway is true."
  value       = aws_subnet.public[*].id
}

output "private_route_table_id" {
  description = "ID of the route table of the private subnets."
  value       = aws_route_table.private.id
}

output "workloads_security_group_id" {
  description = "Security group for the trainer host, the Lambda function and the SageMaker endpoint: no inbound, HTTPS out to the VPC endpoints and S3."
  value       = aws_security_group.workloads.id
}

output "endpoints_security_group_id" {
  description = "Security group of the interface VPC endpoints."
  value       = aws_security_group.endpoints.id
}

output "s3_gateway_endpoint_id" {
  description = "ID of the S3 gateway VPC endpoint."
  value       = aws_vpc_endpoint.s3.id
}

output "interface_endpoint_ids" {
  description = "IDs of the interface VPC endpoints, keyed by service."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
}

output "flow_log_group_name" {
  description = "Name of the CloudWatch log group that receives the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}

output "nat_gateway_ids" {
  description = "IDs of the NAT gateways; empty unless enable_nat_gateway is true."
  value       = aws_nat_gateway.this[*].id
}
