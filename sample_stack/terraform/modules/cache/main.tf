locals {
  cluster_id        = "${var.name_prefix}-redis"
  subnet_group_name = "${var.name_prefix}-cache-subnets"
  address           = "${local.cluster_id}.model.cache.${var.aws_region}.amazonaws.com"
  port              = 6379
}

# aws_elasticache_subnet_group
resource "null_resource" "subnet_group" {
  triggers = {
    name       = local.subnet_group_name
    subnet_ids = join(",", var.subnet_ids)
    tags       = jsonencode(merge(var.tags, { Name = local.subnet_group_name }))
  }
}

# aws_elasticache_replication_group (Redis)
resource "null_resource" "cluster" {
  depends_on = [null_resource.subnet_group]

  triggers = {
    name                       = local.cluster_id
    engine                     = "redis"
    engine_version             = "7.1"
    node_type                  = var.node_type
    num_cache_clusters         = tostring(var.num_nodes)
    automatic_failover_enabled = tostring(var.num_nodes > 1)
    multi_az_enabled           = tostring(var.num_nodes > 1)
    port                       = tostring(local.port)
    transit_encryption_enabled = "true"
    subnet_group_name          = local.subnet_group_name
    tags                       = jsonencode(merge(var.tags, { Name = local.cluster_id }))
  }
}
