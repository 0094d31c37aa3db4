"""Risk of a change: the author's questionnaire and the plan's blast radius, scored.

Pure functions (no database): ``clean_risk_assessment`` and ``clean_rollback_plan`` validate
what a person or CI sends, ``blast_radius`` reads a plan summary
(deployments.terraform.summary), and ``score`` turns both into a score, a level and the
reasons a person reads on the ticket page.

Scoring, documented (and tested for monotonicity: a riskier answer or a more destructive
plan never lowers the score or the level):

- impact x likelihood, each low=1, medium=2, high=3 (1..9);
- +3 data migration, +3 downtime expected, +2 customer-facing, +2 not tested in staging;
- +1 per Media Platform component the plan touches (imports, moves and forgets touch
  their component too), +2 per resource deleted or replaced, +2 per resource forgotten
  (a ``removed`` block: it stays in the cloud, unmanaged), +2 per action invoked (its
  effect is outside the plan and no rollback undoes it); imports and moves change only
  Terraform's state: +0, but listed;
- level: ``high`` from 12, ``medium`` from 6, else ``low``; and ``high`` whatever the score
  when impact and likelihood are both high, or the plan deletes or replaces a resource that
  holds data (deployments.policy.data_resources: a database, bucket, volume, key, queue... data a
  rollback cannot bring back); at least ``medium`` when it forgets one.

The floors hold in every environment: the level is what the change is; what a level
requires (more approvals in prod, no emergency use) is each environment's risk_rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployments.lib.validation import InputError, text_problem
from deployments.policy import data_resources

LEVELS = ("low", "medium", "high")
LEVEL_CHOICES = [(level, level) for level in LEVELS]  # RiskLevelEnum in the API schema
LEVEL_POINTS = {"low": 1, "medium": 2, "high": 3}
SUMMARY_MAX = 2_000
STEPS_MAX = 10_000
DATA_CONSIDERATIONS_MAX = 4_000
EXPECTED_MINUTES_MAX = 7 * 24 * 60

QUESTIONS = ("data_migration", "downtime_expected", "customer_facing", "tested_in_staging")
RISK_FIELDS = ("impact", "likelihood", "summary", *QUESTIONS)
ROLLBACK_FIELDS = ("steps", "expected_minutes", "data_considerations")

POINTS = {"data_migration": 3, "downtime_expected": 3, "customer_facing": 2}
UNTESTED_POINTS = 2
COMPONENT_POINTS = 1
DESTRUCTIVE_POINTS = 2
FORGET_POINTS = 2
INVOKE_POINTS = 2
MEDIUM_FROM = 6
HIGH_FROM = 12
MAX_LISTED = 50  # destructive addresses kept on the ticket

COMPONENTS = ("network", "compute", "database", "cache", "storage", "processing", "monitoring")

# Resource type prefixes of the Media Platform stack (terraform/) and their likes, most
# specific first. Which component a resource belongs to; whether it holds data is
# deployments.policy.data_resources' to say.
_TYPE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("aws_db_", "database"),
    ("aws_rds_", "database"),
    ("aws_dynamodb_", "database"),
    ("aws_docdb", "database"),
    ("aws_neptune_", "database"),
    ("aws_redshift", "database"),
    ("aws_timestream", "database"),
    ("aws_keyspaces_", "database"),
    ("aws_qldb_", "database"),
    ("aws_opensearch", "database"),
    ("aws_elasticsearch_", "database"),
    ("aws_elasticache_", "cache"),
    ("aws_memorydb_", "cache"),
    ("aws_s3", "storage"),
    ("aws_ebs_", "storage"),
    ("aws_efs_", "storage"),
    ("aws_fsx_", "storage"),
    ("aws_backup_", "storage"),
    ("aws_glacier_", "storage"),
    ("aws_ecr", "storage"),
    ("aws_kinesis", "processing"),
    ("aws_msk_", "processing"),
    ("aws_mq_", "processing"),
    ("aws_lambda_", "processing"),
    ("aws_sqs_", "processing"),
    ("aws_iam_", "processing"),
    ("aws_cloudwatch_", "monitoring"),
    ("aws_sns_", "monitoring"),
    ("aws_lb", "compute"),
    ("aws_launch_template", "compute"),
    ("aws_autoscaling_", "compute"),
    ("aws_instance", "compute"),
    ("aws_vpc", "network"),
    ("aws_subnet", "network"),
    ("aws_internet_gateway", "network"),
    ("aws_nat_gateway", "network"),
    ("aws_eip", "network"),
    ("aws_route", "network"),
    ("aws_security_group", "network"),
)
# Module names of the sample stack (sample_stack/terraform/main.tf) and their likes.
_MODULES = {
    "network": "network",
    "app_servers": "compute",
    "compute": "compute",
    "database": "database",
    "db": "database",
    "cache": "cache",
    "media_bucket": "storage",
    "storage": "storage",
    "processing": "processing",
    "alarms": "monitoring",
    "monitoring": "monitoring",
}


# --- input --------------------------------------------------------------------------


def _fail(prefix: str, key: str, message: str) -> InputError:
    return InputError(f"{prefix}.{key}", message)


def _object(value: Any, prefix: str, allowed: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(prefix, "must be a JSON object")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise _fail(prefix, unknown[0], f"unknown field; use {', '.join(allowed)}")
    return dict(value)


def _text(value: Any, prefix: str, key: str, max_length: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _fail(prefix, key, "must be a string")
    problem = text_problem(value)
    if problem:
        raise _fail(prefix, key, problem)
    if len(value) > max_length:
        raise _fail(prefix, key, f"must be at most {max_length} characters (got {len(value)})")
    if required and not value.strip():
        raise _fail(prefix, key, "is required")
    return value.strip()


def clean_risk_assessment(value: Any) -> dict[str, Any]:
    """The questionnaire, field by field; InputError names ``risk_assessment.<field>``."""
    p = "risk_assessment"
    data = _object(value, p, RISK_FIELDS)
    out: dict[str, Any] = {}
    for key in ("impact", "likelihood"):
        level = data.get(key)
        if level is None or level == "":
            raise _fail(p, key, f"is required: one of {', '.join(LEVELS)}")
        if level not in LEVELS:
            raise _fail(p, key, f"must be one of {', '.join(LEVELS)}")
        out[key] = level
    out["summary"] = _text(data.get("summary"), p, "summary", SUMMARY_MAX, required=True)
    for key in QUESTIONS:
        answer = data.get(key, False)
        if not isinstance(answer, bool):
            raise _fail(p, key, "must be true or false")
        out[key] = answer
    return out


def clean_rollback_plan(value: Any) -> dict[str, Any]:
    """The rollback plan, field by field; InputError names ``rollback_plan.<field>``."""
    p = "rollback_plan"
    data = _object(value, p, ROLLBACK_FIELDS)
    # Optional (SPEC §5): the expected rollback time in minutes, when the author knows it.
    minutes = data.get("expected_minutes")
    if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool)):
        raise _fail(p, "expected_minutes", "must be a whole number of minutes")
    if minutes is not None and not 0 <= minutes <= EXPECTED_MINUTES_MAX:
        raise _fail(p, "expected_minutes", f"must be between 0 and {EXPECTED_MINUTES_MAX}")
    return {
        "steps": _text(data.get("steps"), p, "steps", STEPS_MAX, required=True),
        "expected_minutes": minutes,
        "data_considerations": _text(
            data.get("data_considerations"),
            p,
            "data_considerations",
            DATA_CONSIDERATIONS_MAX,
            required=False,
        ),
    }


# --- blast radius ---------------------------------------------------------------------


def component_of(resource_type: str, module: str) -> str:
    """Which Media Platform component a resource belongs to: by its type when the type says,
    else by its innermost module's name; "other" when neither does."""
    for prefix, component in _TYPE_PREFIXES:
        if resource_type.startswith(prefix):
            return component
    for part in reversed(module.split(".")):
        name = part.split("[")[0]
        if name in _MODULES:
            return _MODULES[name]
    return "other"


def _module_of(address: str) -> str:
    parts = address.split(".")
    mods = [f"module.{parts[i + 1]}" for i, p in enumerate(parts[:-1]) if p == "module"]
    return ".".join(mods)


def _item(address: str, component: str, data_reason: str) -> dict[str, str]:
    return {"address": address, "component": component, "data_reason": data_reason}


def blast_radius(
    summary: Mapping[str, Any] | None, extra: Iterable[data_resources.Extra] = ()
) -> dict[str, Any]:
    """What the plan touches: components; what it deletes, replaces or forgets (with
    addresses, and why each holds data when it does); what it imports and moves; the
    actions it invokes. ``extra``: the environment's own data-holding types."""
    extra = tuple(extra)
    components: set[str] = set()
    found: dict[str, list[dict[str, str]]] = {
        key: [] for key in ("deletes", "replaces", "forgets", "imports", "moves", "invocations")
    }
    for rc in (summary or {}).get("resources") or []:
        address = str(rc.get("address", ""))
        fallback_type = address.split(".")[-2] if "." in address else ""
        rtype = str(rc.get("type") or fallback_type)
        module = str(rc.get("module") or _module_of(address))
        component = component_of(rtype, module)
        action = str(rc.get("action", ""))
        previous = str(rc.get("previous_address") or "")
        importing = bool(rc.get("importing"))
        if action in ("no-op", "read", "") and not (previous or importing):
            continue
        components.add(component)
        item = _item(address, component, data_resources.why_it_holds_data(rtype, address, extra))
        if action == "replace":
            found["replaces"].append(item)
        elif "delete" in action:
            found["deletes"].append(item)
        if "forget" in action:
            found["forgets"].append(item)
        if importing:
            found["imports"].append(item)
        if previous:
            found["moves"].append({**item, "previous_address": previous})
    for ai in (summary or {}).get("action_invocations") or []:
        address = str(ai.get("address", ""))
        component = component_of(str(ai.get("type", "")), _module_of(address))
        components.add(component)
        found["invocations"].append(
            {
                "address": address,
                "component": component,
                "trigger": str(ai.get("trigger", "")),
                "resource": str(ai.get("resource", "")),
            }
        )
    out: dict[str, Any] = {
        "components": [c for c in (*COMPONENTS, "other") if c in components],
        "destructive": bool(found["deletes"] or found["replaces"]),
    }
    for key, items in found.items():
        out[key] = items[:MAX_LISTED]
    for key, count_key in (
        ("deletes", "delete_count"),
        ("replaces", "replace_count"),
        ("forgets", "forget_count"),
        ("imports", "import_count"),
        ("moves", "move_count"),
        ("invocations", "invoke_count"),
    ):
        out[count_key] = len(found[key])
    return out


# --- scoring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    score: int
    level: str
    reasons: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "level": self.level, "reasons": list(self.reasons)}


def level_for(score_value: int) -> str:
    if score_value >= HIGH_FROM:
        return "high"
    if score_value >= MEDIUM_FROM:
        return "medium"
    return "low"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def score(questionnaire: Mapping[str, Any] | None, blast: Mapping[str, Any] | None) -> Assessment:
    """Score a change (see the module docstring); reasons are sentences, the decisive first."""
    q = questionnaire or {}
    b = blast or {}
    total = 0
    floors: list[tuple[str, str]] = []  # (level, reason): the level cannot be lower
    reasons: list[str] = []
    impact, likelihood = q.get("impact"), q.get("likelihood")
    if impact in LEVEL_POINTS and likelihood in LEVEL_POINTS:
        base = LEVEL_POINTS[impact] * LEVEL_POINTS[likelihood]
        total += base
        reasons.append(f"impact {impact} x likelihood {likelihood}: +{base}")
        if impact == likelihood == "high":
            floors.append(("high", "high: the author rates impact and likelihood both high"))
    else:
        reasons.append("no risk questionnaire: scored from the plan alone")
    for key, points in POINTS.items():
        if q.get(key) is True:
            total += points
            reasons.append(f"{key.replace('_', ' ')}: +{points}")
    if q and q.get("tested_in_staging") is not True:
        total += UNTESTED_POINTS
        reasons.append(f"not tested in staging: +{UNTESTED_POINTS}")
    components = [c for c in b.get("components") or [] if c]
    if components:
        total += COMPONENT_POINTS * len(components)
        reasons.append(f"the plan touches {', '.join(components)}: +{len(components)}")
    destroyed = int(b.get("delete_count") or 0) + int(b.get("replace_count") or 0)
    if destroyed:
        total += DESTRUCTIVE_POINTS * destroyed
        reasons.append(
            f"the plan deletes or replaces {_plural(destroyed, 'resource')}: "
            f"+{DESTRUCTIVE_POINTS * destroyed}"
        )
    forgotten = int(b.get("forget_count") or 0)
    if forgotten:
        total += FORGET_POINTS * forgotten
        reasons.append(
            f"the plan forgets {_plural(forgotten, 'resource')} (removed from Terraform's "
            f"state, left running unmanaged): +{FORGET_POINTS * forgotten}"
        )
    invoked = int(b.get("invoke_count") or 0)
    if invoked:
        total += INVOKE_POINTS * invoked
        reasons.append(
            f"the plan invokes {_plural(invoked, 'action')} (effects outside the plan, which "
            f"no rollback undoes): +{INVOKE_POINTS * invoked}"
        )
    imported, moved = int(b.get("import_count") or 0), int(b.get("move_count") or 0)
    if imported or moved:
        done = [f"imports {_plural(imported, 'resource')}"] if imported else []
        done += [f"moves {_plural(moved, 'resource')}"] if moved else []
        reasons.append(f"the plan {' and '.join(done)} (Terraform's state only): +0")
    for verb, key in (("replaces", "replaces"), ("deletes", "deletes")):
        for item in b.get(key) or []:
            if item.get("data_reason"):
                floors.append(
                    (
                        "high",
                        f"high: {verb} {item.get('address')} ({item.get('component')}): "
                        f"{item['data_reason']}",
                    )
                )
    for item in b.get("forgets") or []:
        if item.get("data_reason"):
            floors.append(
                (
                    "medium",
                    f"medium: forgets {item.get('address')} ({item.get('component')}), "
                    f"which stays but is no longer managed: {item['data_reason']}",
                )
            )
    level = max([level_for(total), *(lvl for lvl, _ in floors)], key=LEVELS.index)
    decisive = [reason for lvl, reason in floors if lvl == level]
    others = [reason for lvl, reason in floors if lvl != level]
    if not decisive:
        decisive = [f"{level}: score {total}"]
    return Assessment(score=total, level=level, reasons=(*decisive, *others, *reasons))


def assess(
    questionnaire: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    extra: Iterable[data_resources.Extra] = (),
) -> dict[str, Any]:
    """Score and blast radius as stored on the ticket (Ticket.risk); ``extra``: the
    environment's own data-holding resources (Environment.data_resource_types)."""
    blast = blast_radius(summary, extra)
    return {**score(questionnaire, blast).as_dict(), "blast_radius": blast}
