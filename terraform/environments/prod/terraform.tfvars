# prod: multi-AZ high availability. Three AZs, four app servers, larger sizes, versioned media.
environment = "prod"
aws_region  = "eu-west-1"

vpc_cidr           = "10.30.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

app_instance_type  = "m6i.large"
app_instance_count = 4

db_instance_class    = "db.r6g.large"
db_multi_az          = true
db_allocated_storage = 200

cache_node_type = "cache.r6g.large"
cache_num_nodes = 3

media_bucket_versioning  = true
queue_visibility_timeout = 300
function_memory_mb       = 1024
alarm_cpu_threshold      = 70

tags = {
  CostCenter = "media-prod"
  Owner      = "platform-team"
}
