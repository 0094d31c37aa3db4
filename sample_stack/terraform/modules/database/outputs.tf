output "instance_id" {
  description = "Id of the database instance."
  value       = null_resource.instance.id
}

output "identifier" {
  description = "RDS identifier of the database (what CloudWatch dimensions use)."
  value       = local.identifier
}

output "address" {
  description = "Host name of the database."
  value       = local.address
}

output "port" {
  description = "Port of the database."
  value       = local.port
}

output "endpoint" {
  description = "host:port of the database."
  value       = "${local.address}:${local.port}"
}

output "db_name" {
  description = "Name of the application database."
  value       = var.db_name
}

output "username" {
  description = "Master user name."
  value       = var.username
}

output "multi_az" {
  description = "Whether the database has a standby in a second AZ."
  value       = var.multi_az
}
