package data_protection_test

import data.data_protection

env := {"name": "prod", "data_resource_types": ["aws_db_instance", "aws_s3_bucket"], "data_resource_addresses": ["module.database.null_resource.instance"]}

plan(address, type, actions) := {"environment": env, "plan": {"resource_changes": [{
	"address": address,
	"type": type,
	"change": {"actions": actions},
}]}}

test_destroying_a_database_is_denied if {
	msgs := data_protection.violations(plan("aws_db_instance.main", "aws_db_instance", ["delete"]))
	msgs == {"aws_db_instance.main (aws_db_instance) would be destroyed: it holds data the configuration cannot re-create"}
}

test_replacing_a_stand_in_database_is_denied if {
	msgs := data_protection.violations(plan("module.database.null_resource.instance", "null_resource", ["delete", "create"]))
	some msg in msgs
	contains(msg, "would be replaced")
}

test_updating_a_database_passes if {
	count(data_protection.violations(plan("aws_db_instance.main", "aws_db_instance", ["update"]))) == 0
}

test_destroying_what_holds_no_data_passes if {
	count(data_protection.violations(plan("aws_security_group.web", "aws_security_group", ["delete"]))) == 0
}
