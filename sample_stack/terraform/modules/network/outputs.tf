output "vpc_id" {
  description = "Id of the VPC."
  value       = null_resource.vpc.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = var.vpc_cidr
}

output "public_subnet_ids" {
  description = "Ids of the public subnets, one per AZ."
  value       = null_resource.public_subnet[*].id
}

output "private_subnet_ids" {
  description = "Ids of the private subnets, one per AZ."
  value       = null_resource.private_subnet[*].id
}

output "subnet_count" {
  description = "Number of subnets (public + private)."
  value       = length(null_resource.public_subnet) + length(null_resource.private_subnet)
}

output "availability_zones" {
  description = "Availability zones the network spans."
  value       = var.availability_zones
}
