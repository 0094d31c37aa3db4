# staging: production-like. Two AZs, two app servers, multi-AZ database, medium sizes.
environment = "staging"
aws_region  = "eu-west-1"

vpc_cidr           = "10.20.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b"]

app_instance_type  = "t3.medium"
app_instance_count = 2

db_instance_class    = "db.t3.medium"
db_multi_az          = true
db_allocated_storage = 50

cache_node_type = "cache.t3.medium"
cache_num_nodes = 2

media_bucket_versioning  = true
queue_visibility_timeout = 180
function_memory_mb       = 512
alarm_cpu_threshold      = 80

tags = {
  CostCenter = "media-staging"
  Owner      = "platform-team"
}
