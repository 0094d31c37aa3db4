package instance_sizes_test

import data.instance_sizes

doc(env, type, attrs) := {"environment": {"name": env}, "plan": {"resource_changes": [{
	"address": "x.main",
	"type": type,
	"change": {"actions": ["create"], "after": attrs},
}]}}

test_dev_allows_small if {
	count(instance_sizes.violations(doc("dev", "aws_instance", {"instance_type": "t3.small"}))) == 0
	count(instance_sizes.violations(doc("dev", "aws_db_instance", {"instance_class": "db.t3.micro"}))) == 0
}

test_dev_refuses_large if {
	msgs := instance_sizes.violations(doc("dev", "aws_instance", {"instance_type": "m6i.large"}))
	msgs == {"x.main: instance_type m6i.large is not allowed in dev (small sizes only: t3/t4g nano, micro, small)"}
}

test_dev_reads_stand_ins if {
	msgs := instance_sizes.violations(doc("dev", "null_resource", {"triggers": {"node_type": "cache.r6g.large"}}))
	count(msgs) == 1
}

test_staging_allows_up_to_4xlarge if {
	count(instance_sizes.violations(doc("staging", "aws_db_instance", {"instance_class": "db.r6g.4xlarge"}))) == 0
	count(instance_sizes.violations(doc("staging", "aws_db_instance", {"instance_class": "db.r6g.2xlarge"}))) == 0
}

test_staging_refuses_8xlarge if {
	count(instance_sizes.violations(doc("staging", "aws_instance", {"instance_type": "c6i.8xlarge"}))) == 1
	count(instance_sizes.violations(doc("staging", "aws_instance", {"instance_type": "m5.metal"}))) == 1
}

test_prod_allows_anything if {
	count(instance_sizes.violations(doc("prod", "aws_instance", {"instance_type": "x2iedn.32xlarge"}))) == 0
}
