package public_s3_test

import data.public_s3

doc(type, after) := {"plan": {"resource_changes": [{
	"address": "x.media",
	"type": type,
	"change": {"actions": ["create"], "after": after},
}]}}

test_private_bucket_passes if {
	count(public_s3.violations(doc("aws_s3_bucket", {"bucket": "media", "acl": "private"}))) == 0
}

test_public_acl_is_denied if {
	msgs := public_s3.violations(doc("aws_s3_bucket_acl", {"acl": "public-read"}))
	msgs == {"x.media grants the public ACL public-read"}
}

test_open_public_access_block_is_denied if {
	after := {"block_public_acls": true, "block_public_policy": false, "ignore_public_acls": true, "restrict_public_buckets": true}
	msgs := public_s3.violations(doc("aws_s3_bucket_public_access_block", after))
	msgs == {"x.media turns block_public_policy off: the bucket could be made public"}
}

test_stand_in_public_access_block_is_read if {
	after := {"triggers": {"name": "media-public-access-block", "block_public_acls": "false", "block_public_policy": "true", "ignore_public_acls": "true", "restrict_public_buckets": "true"}}
	count(public_s3.violations(doc("null_resource", after))) == 1
}

test_policy_for_everyone_is_denied if {
	text := json.marshal({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::media/*"}]})
	count(public_s3.violations(doc("aws_s3_bucket_policy", {"policy": text}))) == 1
}

test_policy_with_a_condition_passes if {
	text := json.marshal({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]})
	count(public_s3.violations(doc("aws_s3_bucket_policy", {"policy": text}))) == 0
}
