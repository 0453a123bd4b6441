"""The model registry's git tags, in DVC's GTO convention, and the record in their message.

    churn@v1.2.0          a version of model `churn`, on the commit that produced it
    churn#prod#3          the 3rd stage assignment to `prod`: the version on that commit

The message of a tag dvlite makes is a title line, a blank line, `dvlite-model: 1`, and one
JSON object: for a version, the artifact (path, kind, digest, size, files) and the metrics
and params at that commit; for an assignment, the version and stage. Tags made by GTO itself
(no record) are still understood by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from dvlite import yamldoc
from dvlite.errors import BadInputError, FormatError

MARKER = "dvlite-model: 1"
_NAME = r"[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?"
_SEMVER = r"v(?:0|[1-9]\d{0,8})\.(?:0|[1-9]\d{0,8})\.(?:0|[1-9]\d{0,8})"
NAME = re.compile(rf"^{_NAME}$")
VERSION = re.compile(rf"^{_SEMVER}$")
VERSION_TAG = re.compile(rf"^(?P<name>{_NAME})@(?P<version>{_SEMVER})$")
STAGE_TAG = re.compile(rf"^(?P<name>{_NAME})#(?P<stage>{_NAME})#(?P<number>[1-9]\d{{0,8}})$")
MAX_RECORD = 64 << 10


def check_name(name: str, what: str = "model name") -> str:
    if not NAME.match(name or ""):
        raise BadInputError(f"{name!r} is not a valid {what}",
                            hint="use lowercase letters, digits, '-' and '_' (as GTO does)")
    return name


def check_version(version: str) -> str:
    if not VERSION.match(version or ""):
        raise BadInputError(f"{version!r} is not a version", hint="write vMAJOR.MINOR.PATCH, e.g. v1.2.0")
    return version


def version_key(version: str) -> tuple[int, int, int]:
    major, minor, patch = version[1:].split(".")
    return int(major), int(minor), int(patch)


def version_tag(name: str, version: str) -> str:
    return f"{name}@{version}"


def stage_tag(name: str, stage: str, number: int) -> str:
    return f"{name}#{stage}#{number}"


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: str  # file | dir
    digest: str
    size: int
    files: int


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: str
    artifact: Artifact | None  # None for a tag made without dvlite
    metrics: dict = field(default_factory=dict)  # metrics file -> {dotted key: value}
    params: dict = field(default_factory=dict)  # params file -> {dotted key: value}


def version_message(record: VersionRecord) -> str:
    a = record.artifact
    doc = {"name": record.name, "version": record.version, "metrics": record.metrics,
           "params": record.params}
    if a is not None:
        doc["artifact"] = {"path": a.path, "kind": a.kind, "digest": a.digest, "size": a.size,
                           "files": a.files}
    return (f"Register model {record.name} {record.version}\n\n{MARKER}\n"
            f"{json.dumps(doc, sort_keys=True, separators=(',', ':'))}\n")


def stage_message(name: str, version: str, stage: str) -> str:
    doc = {"name": name, "version": version, "stage": stage}
    return f"Assign stage {stage} to model {name} {version}\n\n{MARKER}\n{json.dumps(doc, sort_keys=True)}\n"


def _record(message: str, origin: str) -> dict | None:
    """The JSON object after the marker, bounded and checked; None when there is none."""
    head, sep, body = message.partition(MARKER + "\n")
    if not sep:
        return None
    data = body.strip().encode()
    if len(data) > MAX_RECORD:
        raise FormatError(f"{origin}: the model record is larger than {MAX_RECORD >> 10} KiB")
    doc = yamldoc.load_json(data, origin)
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: the model record is not a JSON object")
    return doc


def _artifact(raw, origin: str) -> Artifact:
    from dvlite.digest import ALGORITHM, Digest
    from dvlite.paths import check

    if not isinstance(raw, dict):
        raise FormatError(f"{origin}: artifact must be an object")
    path = check(raw.get("path"), f"{origin}: artifact path") if isinstance(raw.get("path"), str) else None
    kind, size, files = raw.get("kind"), raw.get("size"), raw.get("files")
    if path is None or kind not in ("file", "dir") or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, files)):
        raise FormatError(f"{origin}: artifact needs path, kind (file or dir), size and files")
    digest = Digest.parse(ALGORITHM, raw.get("digest"))
    return Artifact(path, kind, digest.hex, size, files)


def parse_version(tag: str, message: str) -> VersionRecord:
    m = VERSION_TAG.match(tag)
    if m is None:
        raise FormatError(f"tag {tag!r}: not a model version tag")
    origin = f"tag {tag}"
    doc = _record(message, origin)
    if doc is None:
        return VersionRecord(m["name"], m["version"], None)
    if doc.get("name") != m["name"] or doc.get("version") != m["version"]:
        raise FormatError(f"{origin}: its record names another model or version")
    artifact = _artifact(doc["artifact"], origin) if "artifact" in doc else None
    metrics, params = doc.get("metrics") or {}, doc.get("params") or {}
    if not isinstance(metrics, dict) or not isinstance(params, dict):
        raise FormatError(f"{origin}: metrics and params must be objects")
    return VersionRecord(m["name"], m["version"], artifact, metrics, params)
