locals {
  queue_name    = "${var.name_prefix}-media-jobs"
  dlq_name      = "${var.name_prefix}-media-jobs-dlq"
  function_name = "${var.name_prefix}-media-processor"
  # AWS recommends a queue visibility timeout of six times the function timeout.
  function_timeout = max(3, min(900, floor(var.visibility_timeout / 6)))
}

# aws_sqs_queue (dead letters)
resource "null_resource" "dead_letter_queue" {
  triggers = {
    name                      = local.dlq_name
    message_retention_seconds = "1209600"
    sqs_managed_sse_enabled   = "true"
    tags                      = jsonencode(merge(var.tags, { Name = local.dlq_name }))
  }
}

# aws_sqs_queue
resource "null_resource" "queue" {
  triggers = {
    name                       = local.queue_name
    visibility_timeout_seconds = tostring(var.visibility_timeout)
    message_retention_seconds  = "345600"
    sqs_managed_sse_enabled    = "true"
    redrive_policy = jsonencode({
      deadLetterTargetId = null_resource.dead_letter_queue.id
      maxReceiveCount    = var.max_receive_count
    })
    tags = jsonencode(merge(var.tags, { Name = local.queue_name }))
  }
}

# aws_lambda_function
resource "null_resource" "function" {
  triggers = {
    name        = local.function_name
    runtime     = "python3.12"
    handler     = "processor.handler"
    memory_size = tostring(var.function_memory_mb)
    timeout     = tostring(local.function_timeout)
    subnet_ids  = join(",", var.subnet_ids)
    environment = jsonencode({
      MEDIA_BUCKET = var.media_bucket_name
      MEDIA_REGION = var.aws_region
    })
    tags = jsonencode(merge(var.tags, { Name = local.function_name }))
  }
}

# aws_lambda_event_source_mapping
resource "null_resource" "event_source_mapping" {
  triggers = {
    name            = "${local.function_name}-sqs"
    event_source_id = null_resource.queue.id
    function_id     = null_resource.function.id
    batch_size      = "10"
    enabled         = "true"
    report_failures = "ReportBatchItemFailures"
    tags            = jsonencode(merge(var.tags, { Name = "${local.function_name}-sqs" }))
  }
}
