locals {
  bucket_name       = "${var.name_prefix}-media-${var.aws_region}"
  versioning_status = var.versioning_enabled ? "Enabled" : "Suspended"
}

# aws_s3_bucket
resource "null_resource" "bucket" {
  triggers = {
    name          = local.bucket_name
    region        = var.aws_region
    sse_algorithm = "aws:kms"
    tags          = jsonencode(merge(var.tags, { Name = local.bucket_name }))
  }
}

# aws_s3_bucket_versioning
resource "null_resource" "versioning" {
  triggers = {
    name      = "${local.bucket_name}-versioning"
    bucket_id = null_resource.bucket.id
    status    = local.versioning_status
    tags      = jsonencode(merge(var.tags, { Name = "${local.bucket_name}-versioning" }))
  }
}

# aws_s3_bucket_public_access_block
resource "null_resource" "public_access_block" {
  triggers = {
    name                    = "${local.bucket_name}-public-access-block"
    bucket_id               = null_resource.bucket.id
    block_public_acls       = "true"
    block_public_policy     = "true"
    ignore_public_acls      = "true"
    restrict_public_buckets = "true"
    tags                    = jsonencode(merge(var.tags, { Name = "${local.bucket_name}-public-access-block" }))
  }
}
