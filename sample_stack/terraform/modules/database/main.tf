locals {
  identifier        = "${var.name_prefix}-db"
  subnet_group_name = "${var.name_prefix}-db-subnets"
  address           = "${local.identifier}.cluster-model.${var.aws_region}.rds.amazonaws.com"
  port              = 5432
}

# aws_db_subnet_group
resource "null_resource" "subnet_group" {
  triggers = {
    name       = local.subnet_group_name
    subnet_ids = join(",", var.subnet_ids)
    tags       = jsonencode(merge(var.tags, { Name = local.subnet_group_name }))
  }
}

# aws_db_instance (PostgreSQL). The password is a sensitive variable, so
# Terraform prints it as (sensitive) in every plan and apply. The subnet
# group is referenced by name (as RDS does), so a first plan already shows
# every attribute instead of "(known after apply)".
resource "null_resource" "instance" {
  depends_on = [null_resource.subnet_group]

  triggers = {
    name                    = local.identifier
    engine                  = "postgres"
    engine_version          = var.engine_version
    instance_class          = var.instance_class
    allocated_storage       = tostring(var.allocated_storage)
    storage_encrypted       = "true"
    multi_az                = tostring(var.multi_az)
    backup_retention_period = tostring(var.backup_retention_days)
    db_name                 = var.db_name
    username                = var.username
    password                = var.password
    port                    = tostring(local.port)
    db_subnet_group_name    = local.subnet_group_name
    tags                    = jsonencode(merge(var.tags, { Name = local.identifier }))
  }
}
