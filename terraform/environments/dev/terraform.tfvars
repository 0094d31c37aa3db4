# dev: small and cheap. One AZ, one app server, no database standby.
environment = "dev"
aws_region  = "eu-west-1"

vpc_cidr           = "10.10.0.0/16"
availability_zones = ["eu-west-1a"]

app_instance_type  = "t3.small"
app_instance_count = 1

db_instance_class    = "db.t3.micro"
db_multi_az          = false
db_allocated_storage = 20

cache_node_type = "cache.t3.micro"
cache_num_nodes = 1

media_bucket_versioning  = false
queue_visibility_timeout = 60
function_memory_mb       = 256
alarm_cpu_threshold      = 90

tags = {
  CostCenter = "media-dev"
  Owner      = "platform-team"
}
