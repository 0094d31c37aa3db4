# --- Processing: SQS queue (+ dead letters) feeding the media processor Lambda ---
locals {
  function_timeout = max(3, min(900, floor(var.queue_visibility_timeout / 6)))
}

resource "aws_sqs_queue" "jobs_dlq" {
  name                      = "${local.name}-media-jobs-dlq"
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "jobs" {
  name                       = "${local.name}-media-jobs"
  visibility_timeout_seconds = var.queue_visibility_timeout
  redrive_policy             = jsonencode({ deadLetterTargetArn = aws_sqs_queue.jobs_dlq.arn, maxReceiveCount = 5 })
}

resource "aws_iam_role" "processor" {
  name = "${local.name}-media-processor"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "lambda.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy_attachment" "processor" {
  for_each   = toset(["AWSLambdaSQSQueueExecutionRole", "AWSLambdaVPCAccessExecutionRole"])
  role       = aws_iam_role.processor.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/${each.key}"
}

resource "aws_iam_role_policy" "processor_media" {
  role = aws_iam_role.processor.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject"], Resource = "${aws_s3_bucket.media.arn}/*" }]
  })
}

resource "aws_lambda_function" "processor" {
  function_name = "${local.name}-media-processor"
  role          = aws_iam_role.processor.arn
  runtime       = "python3.12"
  handler       = "processor.handler"
  s3_bucket     = var.function_s3_bucket
  s3_key        = var.function_s3_key
  memory_size   = var.function_memory_mb
  timeout       = local.function_timeout
  environment {
    variables = { MEDIA_BUCKET = aws_s3_bucket.media.id }
  }
  vpc_config {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.app.id]
  }
}

resource "aws_lambda_event_source_mapping" "jobs" {
  event_source_arn        = aws_sqs_queue.jobs.arn
  function_name           = aws_lambda_function.processor.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}
