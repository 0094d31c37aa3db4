output "environment" {
  description = "Environment this state describes."
  value       = var.environment
}

output "vpc_id" {
  description = "Id of the VPC."
  value       = module.network.vpc_id
}

output "subnet_count" {
  description = "Number of subnets (public + private)."
  value       = module.network.subnet_count
}

output "availability_zones" {
  description = "Availability zones the stack spans."
  value       = module.network.availability_zones
}

output "app_server_count" {
  description = "Number of application servers."
  value       = module.app_servers.instance_count
}

output "app_server_ids" {
  description = "Ids of the application servers."
  value       = module.app_servers.instance_ids
}

output "load_balancer_dns_name" {
  description = "DNS name of the application load balancer."
  value       = module.app_servers.load_balancer_dns_name
}

output "db_endpoint" {
  description = "host:port of the database."
  value       = module.database.endpoint
}

output "db_multi_az" {
  description = "Whether the database has a standby in a second AZ."
  value       = module.database.multi_az
}

output "db_connection_string" {
  description = "Full connection string of the database, password included."
  value       = "postgresql://${module.database.username}:${var.db_password}@${module.database.endpoint}/${module.database.db_name}"
  sensitive   = true
}

output "cache_endpoint" {
  description = "host:port of the Redis cache."
  value       = module.cache.endpoint
}

output "media_bucket_name" {
  description = "Name of the media bucket."
  value       = module.media_bucket.bucket_name
}

output "media_bucket_versioning" {
  description = "Versioning status of the media bucket."
  value       = module.media_bucket.versioning_status
}

output "processing_queue_name" {
  description = "Name of the media processing queue."
  value       = module.processing.queue_name
}

output "processing_function_name" {
  description = "Name of the media processing function."
  value       = module.processing.function_name
}

output "alarm_count" {
  description = "Number of CloudWatch alarms."
  value       = module.alarms.alarm_count
}

output "tags" {
  description = "Tags applied to every resource."
  value       = local.tags
}
