output "instance_ids" {
  description = "Ids of the app servers."
  value       = null_resource.instance[*].id
}

output "instance_count" {
  description = "Number of app servers."
  value       = length(null_resource.instance)
}

output "load_balancer_id" {
  description = "Id of the load balancer."
  value       = null_resource.load_balancer.id
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer."
  value       = "${var.name_prefix}-alb.${var.aws_region}.elb.amazonaws.com"
}
