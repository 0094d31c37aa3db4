environment        = "staging"
app_instance_count = 2
