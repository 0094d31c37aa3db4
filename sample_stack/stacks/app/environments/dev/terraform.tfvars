environment        = "dev"
app_instance_count = 1
