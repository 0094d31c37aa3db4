output "bucket_id" {
  description = "Id of the media bucket."
  value       = null_resource.bucket.id
}

output "bucket_name" {
  description = "Name of the media bucket."
  value       = local.bucket_name
}

output "bucket_arn" {
  description = "ARN of the media bucket."
  value       = "arn:aws:s3:::${local.bucket_name}"
}

output "versioning_status" {
  description = "Enabled or Suspended."
  value       = local.versioning_status
}
