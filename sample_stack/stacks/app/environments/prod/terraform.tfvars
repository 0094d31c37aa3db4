environment        = "prod"
app_instance_count = 3
