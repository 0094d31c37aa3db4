"""The policy evaluator's child process: run inside the sandbox by deployments.terraform.rego.

It is started as ``python -I -S rego_child.py <folder>`` with nothing of the portal on its
path: it reads ``<folder>/spec.json`` (the jobs, the input document and where regopy lies),
evaluates one job at a time with a fresh interpreter, and appends one JSON line per
finished job to ``<folder>/results.jsonl``, so a job that never finishes (killed at the time
limit) is the first one without a line. Standard library and regopy only.
"""

import json
import os
import re
import sys
from typing import Any


def _package(source: str) -> str:
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("package "):
            return text[len("package ") :].strip()
    return ""


_UNDEFINED = object()


def _value(out: Any) -> Any:
    """The binding ``x`` of a successful query, or _UNDEFINED (rego-cpp aborts the process
    when an undefined result's binding is asked for, so it is never asked)."""
    if str(out).strip() == "undefined":
        return _UNDEFINED
    return json.loads(out.binding("x").json())


def _names(rego: Any, package: str) -> list[Any]:
    out = rego.query(f"x := [n | data.{package}[n]]")
    if not out.ok():
        return []
    value = _value(out)
    return value if isinstance(value, list) else []


def _set(rego: Any, query: str) -> list[Any]:
    out = rego.query(f"x := {query}")
    if not out.ok():
        raise RuntimeError(
            f"evaluation error in {query} (conflicting rule values, or a built-in that failed)"
        )
    value = _value(out)
    if value is _UNDEFINED:
        return []  # no rule of that name
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return [value]


def _message(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("msg"), str):
        return value["msg"]
    return json.dumps(value, sort_keys=True)


_ERROR = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|\d+\s*\(errormsg \d+:(.*?)\)\s*\(errorast")


def _explain(exc: Exception, job: dict[str, Any]) -> str:
    """rego-cpp's error sequence as ``file:line:column: message`` sentences."""
    text = " ".join(str(exc).split())
    sources = dict((path, source) for path, source in job["modules"])
    found = []
    for path, offset, message in _ERROR.findall(text):
        source = sources.get(path, "")
        before = source[: int(offset)]
        line = before.count("\n") + 1
        column = int(offset) - (before.rfind("\n") + 1) + 1
        found.append(f"{path}:{line}:{column}: {message.strip()}" if path else message.strip())
    if found:
        return "; ".join(dict.fromkeys(found))
    if text in ("<error>", ""):
        return "evaluation error (conflicting rule values, or a built-in that failed)"
    return text


def _run(regopy: Any, job: dict[str, Any], input_doc: Any) -> dict[str, Any]:
    rego = regopy.Interpreter()
    for path, source in job["modules"]:
        rego.add_module(path, source)
    package = job.get("package") or _package(job["modules"][0][1])
    if not package:
        raise RuntimeError("the file declares no package")
    if job["mode"] == "test":
        tests = []
        declared = re.findall(r"^\s*(test_\w+)", "\n".join(m[1] for m in job["modules"][:1]), re.M)
        for name in sorted(set(_names(rego, package)) | set(declared)):
            if not name.startswith("test_"):
                continue
            out = rego.query(f"x := data.{package}.{name}")
            passed = out.ok() and _value(out) is True
            tests.append({"name": name, "passed": passed})
        return {"package": package, "tests": tests}
    rego.set_input(input_doc)
    deny = [_message(v) for v in _set(rego, f"data.{package}.deny")]
    warn = [_message(v) for v in _set(rego, f"data.{package}.warn")]
    return {"package": package, "deny": sorted(deny), "warn": sorted(warn)}


def main(folder: str) -> None:
    with open(os.path.join(folder, "spec.json"), encoding="utf-8") as handle:
        spec = json.load(handle)
    for entry in spec["python_path"]:
        sys.path.insert(0, entry)
    # regopy prints parse errors on standard output: that is the log, not the results.
    import regopy

    with open(os.path.join(folder, "results.jsonl"), "a", encoding="utf-8") as results:
        for job in spec["jobs"]:
            try:
                line = {"id": job["id"], **_run(regopy, job, spec["input"])}
            except Exception as exc:
                line = {"id": job["id"], "error": _explain(exc, job)[:2000]}
            results.write(json.dumps(line) + "\n")
            results.flush()


if __name__ == "__main__":
    main(sys.argv[1])
