# Offline model of the Media Platform stack in /terraform: every AWS resource
# there has a null_resource counterpart here whose triggers hold the
# attributes that matter, so plans, applies and drift behave like the real
# thing without any cloud account or network access.

locals {
  name_prefix = "${var.project}-${var.environment}"

  tags = merge(var.tags, {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "change-control-portal"
  })

  db_backup_retention_days = lookup({ dev = 1, staging = 7, prod = 14 }, var.environment, 1)
}

module "network" {
  source = "./modules/network"

  name_prefix        = local.name_prefix
  aws_region         = var.aws_region
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  tags               = local.tags
}

module "app_servers" {
  source = "./modules/app_servers"

  name_prefix        = local.name_prefix
  aws_region         = var.aws_region
  vpc_id             = module.network.vpc_id
  public_subnet_ids  = module.network.public_subnet_ids
  private_subnet_ids = module.network.private_subnet_ids
  instance_type      = var.app_instance_type
  instance_count     = var.app_instance_count
  tags               = local.tags
}

module "database" {
  source = "./modules/database"

  name_prefix           = local.name_prefix
  aws_region            = var.aws_region
  subnet_ids            = module.network.private_subnet_ids
  instance_class        = var.db_instance_class
  multi_az              = var.db_multi_az
  allocated_storage     = var.db_allocated_storage
  backup_retention_days = local.db_backup_retention_days
  password              = var.db_password
  tags                  = local.tags
}

module "cache" {
  source = "./modules/cache"

  name_prefix = local.name_prefix
  aws_region  = var.aws_region
  subnet_ids  = module.network.private_subnet_ids
  node_type   = var.cache_node_type
  num_nodes   = var.cache_num_nodes
  tags        = local.tags
}

module "media_bucket" {
  source = "./modules/media_bucket"

  name_prefix        = local.name_prefix
  aws_region         = var.aws_region
  versioning_enabled = var.media_bucket_versioning
  tags               = local.tags
}

module "processing" {
  source = "./modules/processing"

  name_prefix        = local.name_prefix
  aws_region         = var.aws_region
  visibility_timeout = var.queue_visibility_timeout
  function_memory_mb = var.function_memory_mb
  media_bucket_name  = module.media_bucket.bucket_name
  subnet_ids         = module.network.private_subnet_ids
  tags               = local.tags
}

module "alarms" {
  source = "./modules/alarms"

  name_prefix        = local.name_prefix
  app_instance_count = var.app_instance_count
  app_instance_ids   = module.app_servers.instance_ids
  cpu_threshold      = var.alarm_cpu_threshold
  db_identifier      = module.database.identifier
  queue_name         = module.processing.queue_name
  tags               = local.tags
}
