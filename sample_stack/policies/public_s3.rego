# No public S3 bucket: no public canned ACL, no public access block that lets public
# access through, no bucket policy granting everyone ("*") without a condition. The
# sample stack's stand-ins (null_resource triggers) are read the same way.
package public_s3

deny := violations(input)

public_acls := {"public-read", "public-read-write", "authenticated-read"}

block_settings := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

violations(doc) := (acl_violations(doc) | block_violations(doc)) | policy_violations(doc)

acl_violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	changing(rc)
	rc.type in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	acl := values(rc).acl
	acl in public_acls
	msg := concat("", [rc.address, " grants the public ACL ", acl])
}

block_violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	changing(rc)
	public_access_block(rc)
	settings := values(rc)
	some setting in block_settings
	off(settings[setting])
	msg := concat("", [rc.address, " turns ", setting, " off: the bucket could be made public"])
}

policy_violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	changing(rc)
	rc.type == "aws_s3_bucket_policy"
	text := values(rc).policy
	is_string(text)
	json.is_valid(text)
	document := json.unmarshal(text)
	some statement in document.Statement
	statement.Effect == "Allow"
	everyone(statement.Principal)
	not statement.Condition
	msg := concat("", [rc.address, " allows everyone (Principal *) without a condition"])
}

changing(rc) if "create" in rc.change.actions

changing(rc) if "update" in rc.change.actions

values(rc) := rc.change.after.triggers if {
	rc.type == "null_resource"
	is_object(rc.change.after.triggers)
}

values(rc) := rc.change.after if {
	rc.type != "null_resource"
	is_object(rc.change.after)
}

off(value) if value == false

off(value) if value == "false"

public_access_block(rc) if rc.type == "aws_s3_bucket_public_access_block"

public_access_block(rc) if {
	rc.type == "null_resource"
	endswith(values(rc).name, "-public-access-block")
}

everyone(principal) if principal == "*"

everyone(principal) if principal.AWS == "*"
