"""Resource types that hold data: what a plan cannot give back once it deletes them.

The risk score's data-loss floor (deployments.policy.risk) reads this table: a plan that deletes
or replaces one of these resources is high risk whatever else it scores, and one that
forgets one (a ``removed`` block: it stays in AWS, but no plan guards it any more) is at
least medium. Each entry says why, in one line a reviewer reads on the ticket.

Maintaining it: add a type with its "why"; keep the groups. A type belongs here when
destroying it destroys data (rows, objects, messages, logs, key material, images) that the
configuration cannot re-create. Left out on purpose, because they hold no data and are
re-created as they were: subnet, parameter and option groups (``aws_db_subnet_group``,
``aws_db_parameter_group``, ``aws_db_option_group``, ``aws_rds_cluster_parameter_group``,
``aws_elasticache_parameter_group``...), Aurora, Neptune and DocumentDB cluster instances
(the cluster's volume holds the data, and the cluster is listed), IAM, networking,
functions, topics, alarms, and S3 bucket settings (policy, versioning, lifecycle).

An environment adds its own entries (Environment.data_resource_types, edited in the admin,
validated by :func:`parse_extra`): a type this table misses (another provider's, a newer
AWS one), or one resource by address, for a stand-in whose type says nothing (the sample
stack models its database with a ``null_resource``).

Pure data and functions: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deployments.lib.validation import text_problem

DATA_RESOURCE_TYPES: dict[str, str] = {
    # --- relational databases and their snapshots (RDS, Aurora) ---
    "aws_db_instance": "an RDS database: its storage and automated backups go with it unless a "
    "final snapshot is taken",
    "aws_rds_cluster": "an Aurora/RDS cluster: the cluster volume holds every row, and its "
    "automated backups go with it",
    "aws_rds_global_cluster": "an Aurora global database: the data replicated across regions",
    "aws_db_snapshot": "an RDS snapshot: a backup the database may be restored from",
    "aws_db_cluster_snapshot": "an Aurora/RDS cluster snapshot: a backup the cluster may be "
    "restored from",
    "aws_db_snapshot_copy": "a copy of an RDS snapshot (often the only one in another region)",
    "aws_rds_shard_group": "an Aurora Limitless shard group: it holds the database's shards",
    # --- key-value, document, graph, ledger and time-series databases ---
    "aws_dynamodb_table": "a DynamoDB table: every item (point-in-time recovery goes with it)",
    "aws_dynamodb_table_replica": "a DynamoDB global table replica: that region's copy of the "
    "table",
    "aws_dynamodb_global_table": "a DynamoDB global table (2017 version): the replicated table",
    "aws_docdb_cluster": "a DocumentDB cluster: its volume holds the documents",
    "aws_docdb_cluster_snapshot": "a DocumentDB snapshot: a backup the cluster may be restored "
    "from",
    "aws_docdb_global_cluster": "a DocumentDB global cluster: the data replicated across regions",
    "aws_docdb_elastic_cluster": "a DocumentDB elastic cluster: its shards hold the documents",
    "aws_neptune_cluster": "a Neptune cluster: its volume holds the graph",
    "aws_neptune_cluster_snapshot": "a Neptune snapshot: a backup the graph may be restored from",
    "aws_neptune_global_cluster": "a Neptune global database: the graph replicated across regions",
    "aws_keyspaces_keyspace": "a Keyspaces (Cassandra) keyspace: its tables and their rows",
    "aws_keyspaces_table": "a Keyspaces (Cassandra) table: its rows",
    "aws_timestreamwrite_database": "a Timestream database: its tables of time series",
    "aws_timestreamwrite_table": "a Timestream table: its time series",
    "aws_timestreaminfluxdb_db_instance": "a Timestream for InfluxDB instance: its storage",
    "aws_qldb_ledger": "a QLDB ledger: its journal, which cannot be re-created",
    "aws_lightsail_database": "a Lightsail database: its storage",
    "aws_lightsail_disk": "a Lightsail block storage disk: its files",
    # --- caches that keep data and snapshots ---
    "aws_elasticache_replication_group": "an ElastiCache (Redis/Valkey) replication group: its "
    "data and automatic snapshots go with it unless a final snapshot is named",
    "aws_elasticache_cluster": "an ElastiCache cluster: its data and automatic snapshots",
    "aws_elasticache_serverless_cache": "an ElastiCache serverless cache: its data and snapshots",
    "aws_elasticache_global_replication_group": "an ElastiCache global datastore: the data "
    "replicated across regions",
    "aws_memorydb_cluster": "a MemoryDB cluster: a durable primary database, not only a cache",
    "aws_memorydb_snapshot": "a MemoryDB snapshot: a backup the cluster may be restored from",
    # --- warehouses ---
    "aws_redshift_cluster": "a Redshift cluster: the warehouse's tables (its automated "
    "snapshots go with it unless a final snapshot is taken)",
    "aws_redshift_cluster_snapshot": "a Redshift snapshot: a backup the warehouse may be "
    "restored from",
    "aws_redshiftserverless_namespace": "a Redshift Serverless namespace: it holds the "
    "warehouse's databases",
    "aws_redshiftserverless_snapshot": "a Redshift Serverless snapshot: a backup of the namespace",
    # --- search domains ---
    "aws_opensearch_domain": "an OpenSearch domain: its indices",
    "aws_elasticsearch_domain": "an Elasticsearch domain: its indices",
    "aws_opensearchserverless_collection": "an OpenSearch Serverless collection: its indices",
    # --- object storage ---
    "aws_s3_bucket": "an S3 bucket: every object and version in it",
    "aws_s3_directory_bucket": "an S3 Express One Zone directory bucket: its objects",
    "aws_s3control_bucket": "an S3 on Outposts bucket: its objects",
    "aws_s3tables_table_bucket": "an S3 table bucket: its tables",
    "aws_s3tables_table": "an S3 (Iceberg) table: its data files",
    "aws_glacier_vault": "an S3 Glacier vault: its archives",
    # --- volumes, images and snapshots (EBS) ---
    "aws_ebs_volume": "an EBS volume: the files on it",
    "aws_ebs_snapshot": "an EBS snapshot: a backup a volume may be restored from",
    "aws_ebs_snapshot_copy": "a copy of an EBS snapshot (often the only one in another region)",
    "aws_ebs_snapshot_import": "an EBS snapshot imported from a disk image",
    "aws_ami_copy": "a copied AMI: its EBS snapshots are deleted with it",
    "aws_ami_from_instance": "an AMI made from an instance: its EBS snapshots are deleted with it",
    # --- file systems ---
    "aws_efs_file_system": "an EFS file system: its files",
    "aws_fsx_lustre_file_system": "an FSx for Lustre file system: its files",
    "aws_fsx_windows_file_system": "an FSx for Windows file system: its files and shares",
    "aws_fsx_ontap_file_system": "an FSx for NetApp ONTAP file system: its volumes",
    "aws_fsx_ontap_volume": "an FSx for NetApp ONTAP volume: its files",
    "aws_fsx_openzfs_file_system": "an FSx for OpenZFS file system: its volumes",
    "aws_fsx_openzfs_volume": "an FSx for OpenZFS volume: its files",
    "aws_fsx_openzfs_snapshot": "an FSx for OpenZFS snapshot: a restore point",
    "aws_fsx_backup": "an FSx backup: a file system may be restored from it",
    # --- backups ---
    "aws_backup_vault": "an AWS Backup vault: its recovery points",
    "aws_backup_logically_air_gapped_vault": "an AWS Backup air-gapped vault: its recovery points",
    # --- keys: deletion is scheduled, then what they encrypted cannot be read ---
    "aws_kms_key": "a KMS key: once its scheduled deletion passes, everything encrypted with it "
    "is unreadable",
    "aws_kms_replica_key": "a KMS replica key: data encrypted with it in that region becomes "
    "unreadable",
    "aws_kms_external_key": "a KMS key with imported material: once deleted, data encrypted with "
    "it is unreadable",
    "aws_kms_replica_external_key": "a KMS replica key with imported material: data encrypted "
    "with it becomes unreadable",
    "aws_acmpca_certificate_authority": "a private certificate authority: its private key, "
    "which cannot be re-created (deletion is scheduled)",
    # --- secrets ---
    "aws_secretsmanager_secret": "a Secrets Manager secret: its value, unless the configuration "
    "holds it (deletion is scheduled)",
    "aws_cognito_user_pool": "a Cognito user pool: its users and their passwords, which cannot "
    "be exported",
    # --- container images and source ---
    "aws_ecr_repository": "an ECR repository: every image pushed to it",
    "aws_ecrpublic_repository": "an ECR Public repository: every image pushed to it",
    "aws_codecommit_repository": "a CodeCommit repository: its git history",
    # --- streams and queues: messages in flight ---
    "aws_kinesis_stream": "a Kinesis data stream: the records it retains",
    "aws_kinesis_video_stream": "a Kinesis video stream: the media it retains",
    "aws_sqs_queue": "an SQS queue: the messages waiting in it",
    "aws_msk_cluster": "an MSK (Kafka) cluster: its topics and their retained records",
    "aws_msk_serverless_cluster": "an MSK Serverless cluster: its topics and their records",
    "aws_mq_broker": "an Amazon MQ broker: its queued messages",
    # --- logs and audit trails ---
    "aws_cloudwatch_log_group": "a CloudWatch log group: every log event it retains",
    "aws_cloudtrail_event_data_store": "a CloudTrail Lake event data store: its audit events",
}

MAX_EXTRA = 200
WHY_MAX = 200
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_ADDRESS_RE = re.compile(rf"^(?:module\.{_NAME}\.)*{_NAME}\.{_NAME}$")
# An instance key: [0] or ["name"] (a quoted key may hold brackets and escaped quotes).
_INSTANCE_KEY = re.compile(r'\[(?:\d+|"(?:[^"\\]|\\.)*")\]')


@dataclass(frozen=True)
class Extra:
    """One entry an environment adds: a resource type, or one resource by address."""

    why: str
    type: str = ""
    address: str = ""

    def as_dict(self) -> dict[str, str]:
        key = "type" if self.type else "address"
        return {key: self.type or self.address, "why": self.why}


def parse_extra(value: Any) -> tuple[Extra, ...]:
    """Environment.data_resource_types: ``[{"type": "...", "why": "..."}`` or
    ``{"address": "module.db.null_resource.main", "why": "..."}, ...]``. ValueError says
    what is wrong, naming the entry."""
    if value in (None, ""):
        return ()
    if not isinstance(value, list):
        raise ValueError(
            'must be a list of {"type": "<resource type>", "why": "..."} or '
            '{"address": "<resource address>", "why": "..."} objects'
        )
    if len(value) > MAX_EXTRA:
        raise ValueError(f"at most {MAX_EXTRA} entries")
    out: list[Extra] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(value):
        where = f"entry {index + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object with a type or an address, and a why")
        unknown = sorted(str(k) for k in entry if k not in ("type", "address", "why"))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}; use type or address, and why")
        if ("type" in entry) == ("address" in entry):
            raise ValueError(f"{where}: give either a type or an address")
        kind = "type" if "type" in entry else "address"
        target = entry[kind]
        pattern = _TYPE_RE if kind == "type" else _ADDRESS_RE
        if not isinstance(target, str) or len(target) > 300 or not pattern.match(target):
            example = "aws_custom_thing" if kind == "type" else "module.db.null_resource.main"
            raise ValueError(
                f"{where}: {kind} {target!r} is not a resource {kind} (such as {example}"
                + (", without instance keys)" if kind == "address" else ")")
            )
        why = entry.get("why")
        if not isinstance(why, str) or not why.strip():
            raise ValueError(f"{where}: why is required: say what data it holds")
        problem = text_problem(why)
        if problem or len(why) > WHY_MAX:
            raise ValueError(f"{where}: why {problem or f'must be at most {WHY_MAX} characters'}")
        if (kind, target) in seen:
            raise ValueError(f"{where}: {kind} {target} is listed twice")
        seen.add((kind, target))
        out.append(Extra(why=why.strip(), **{kind: target}))
    return tuple(out)


def config_address(address: str) -> str:
    """The address without instance keys: ``module.a["x"].aws_s3_bucket.b[0]`` is
    ``module.a.aws_s3_bucket.b``."""
    return _INSTANCE_KEY.sub("", address)


def why_it_holds_data(resource_type: str, address: str, extra: Iterable[Extra] = ()) -> str:
    """Why the resource holds data that its deletion loses; "" when it holds none."""
    bare = config_address(address)
    for entry in extra:
        if (entry.type and entry.type == resource_type) or (
            entry.address and entry.address == bare
        ):
            return entry.why
    return DATA_RESOURCE_TYPES.get(resource_type, "")


# The sample stack (sample_stack/terraform) models each AWS resource with a null_resource;
# these stand in for resources that hold data. `seed_demo` (the local run) gives them to
# every environment that has no list of its own, so the demo scores like the real stack.
SAMPLE_STACK_EXTRA: list[dict[str, str]] = [
    {
        "address": "module.database.null_resource.instance",
        "why": "the sample stack's aws_db_instance: the PostgreSQL database",
    },
    {
        "address": "module.cache.null_resource.cluster",
        "why": "the sample stack's aws_elasticache_replication_group: the Redis data and "
        "its snapshots",
    },
    {
        "address": "module.media_bucket.null_resource.bucket",
        "why": "the sample stack's aws_s3_bucket: every uploaded media file",
    },
    {
        "address": "module.processing.null_resource.queue",
        "why": "the sample stack's aws_sqs_queue: the jobs waiting to be processed",
    },
    {
        "address": "module.processing.null_resource.dead_letter_queue",
        "why": "the sample stack's dead-letter aws_sqs_queue: the jobs that failed",
    },
]
