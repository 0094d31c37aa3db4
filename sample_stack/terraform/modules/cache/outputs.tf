output "cluster_id" {
  description = "Id of the Redis replication group."
  value       = null_resource.cluster.id
}

output "endpoint" {
  description = "host:port of the Redis primary."
  value       = "${local.address}:${local.port}"
}

output "num_nodes" {
  description = "Number of Redis nodes."
  value       = var.num_nodes
}
