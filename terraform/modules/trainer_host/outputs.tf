output "instance_id" {
  description = "ID of the trainer instance; null when enabled is false."
  value       = one(aws_instance.this[*].id)
}

output "private_ip" {
  description = "Private IP address of the trainer instance; null when enabled is false."
  value       = one(aws_instance.this[*].private_ip)
}

output "ami_id" {
  description = "AMI the trainer instance runs; null when enabled is false."
  value       = one(aws_instance.this[*].ami)
}

output "ssm_start_session_command" {
  description = "AWS CLI command that opens a shell on the host through Session Manager; null when enabled is false."
  value       = var.enabled ? "aws ssm start-session --target ${aws_instance.this[0].id}" : null
}

output "user_data" {
  description = "The rendered user data script (it holds no secrets)."
  value       = local.user_data
}

output "status_parameter_name" {
  description = "SSM parameter holding the set-up status (pending, ok, failed: <step>); null when disabled or not set."
  value       = one(aws_ssm_parameter.status[*].name)
}
