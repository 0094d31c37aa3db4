package tags_test

import data.tags

aws_bucket(values) := {"plan": {"resource_changes": [{
	"address": "aws_s3_bucket.media",
	"type": "aws_s3_bucket",
	"change": {"actions": ["create"], "after": {"bucket": "media", "tags": values}},
}]}}

test_fully_tagged_aws_resource_passes if {
	doc := aws_bucket({"Project": "media", "Environment": "dev", "Owner": "platform", "cost-center": "cc-1"})
	count(tags.violations(doc)) == 0
}

test_untagged_aws_resource_is_denied if {
	msgs := tags.violations(aws_bucket(null))
	msgs == {"aws_s3_bucket.media lacks the tags costcenter, environment, owner, project: every resource carries project, environment, owner and cost-center"}
}

test_missing_cost_center_is_named if {
	msgs := tags.violations(aws_bucket({"Project": "media", "Environment": "dev", "Owner": "platform"}))
	count(msgs) == 1
	some msg in msgs
	contains(msg, "lacks the tags costcenter:")
}

test_default_tags_count if {
	doc := {"plan": {"resource_changes": [{
		"address": "aws_instance.web",
		"type": "aws_instance",
		"change": {"actions": ["update"], "after": {"tags": {"Name": "web"}, "tags_all": {"Name": "web", "Project": "m", "Environment": "dev", "Owner": "o", "CostCenter": "c"}}},
	}]}}
	count(tags.violations(doc)) == 0
}

test_resources_without_tags_are_not_checked if {
	doc := {"plan": {"resource_changes": [
		{"address": "aws_iam_role_policy_attachment.x", "type": "aws_iam_role_policy_attachment", "change": {"actions": ["create"], "after": {"role": "r"}}},
		{"address": "null_resource.marker", "type": "null_resource", "change": {"actions": ["create"], "after": {"triggers": {"name": "x"}}}},
	]}}
	count(tags.violations(doc)) == 0
}

test_stand_in_tags_are_read if {
	doc := {"plan": {"resource_changes": [{
		"address": "null_resource.bucket",
		"type": "null_resource",
		"change": {"actions": ["create"], "after": {"triggers": {"tags": "{\"Project\":\"media\"}"}}},
	}]}}
	some msg in tags.violations(doc)
	contains(msg, "null_resource.bucket lacks the tags costcenter, environment, owner:")
}

test_deletes_are_not_checked if {
	doc := {"plan": {"resource_changes": [{
		"address": "aws_s3_bucket.old",
		"type": "aws_s3_bucket",
		"change": {"actions": ["delete"], "after": null},
	}]}}
	count(tags.violations(doc)) == 0
}
