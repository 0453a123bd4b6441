"""The model registry: versions and stage assignments as annotated git tags (GTO's names),
each version holding its artifact's digest and the metrics and params of its commit.

Tags are made locally; `git push --tags` shares them. Reading needs only the tags: `get`
works from a fresh clone, or from a repository given by URL (cloned bare, tags only).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from dvlite import scm
from dvlite.errors import BadInputError, DvliteError
from dvlite.models import tags
from dvlite.models.tags import Artifact, VersionRecord
from dvlite.repo import Repo

PATTERNS = ["refs/tags/*@v*", "refs/tags/*#*#*"]


@dataclass
class ModelVersion:
    name: str
    version: str
    commit: str
    created: int  # the tag's creation time (unix)
    record: VersionRecord
    stages: list[str] = field(default_factory=list)  # the stages this version holds now
    problem: DvliteError | None = None  # its record could not be read (listed, never used)

    @property
    def tag(self) -> str:
        return tags.version_tag(self.name, self.version)


@dataclass
class Model:
    name: str
    versions: list[ModelVersion] = field(default_factory=list)  # oldest version first (semver)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version it holds
    assignments: dict[str, int] = field(default_factory=dict)  # stage -> highest N so far

    @property
    def latest(self) -> ModelVersion | None:
        return self.versions[-1] if self.versions else None

    def version(self, version: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.version == version), None)


def read_registry(git_dir: str) -> dict[str, Model]:
    """Every model of a repository (work tree or bare clone), from its tags."""
    found = scm.annotated_tags(git_dir, PATTERNS)
    models: dict[str, Model] = {}
    by_commit: dict[tuple[str, str], list[ModelVersion]] = {}
    for name, commit, created, message in found:
        m = tags.VERSION_TAG.match(name)
        if m is None:
            continue
        problem = None
        try:
            record = tags.parse_version(name, message)
        except DvliteError as exc:  # a damaged or hostile record: listed, never used
            record, problem = VersionRecord(m["name"], m["version"], None), exc
        v = ModelVersion(m["name"], m["version"], commit, created, record, problem=problem)
        models.setdefault(v.name, Model(v.name)).versions.append(v)
        by_commit.setdefault((v.name, commit), []).append(v)
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for name, commit, _created, _message in found:
        m = tags.STAGE_TAG.match(name)
        if m is None:
            continue
        model = models.setdefault(m["name"], Model(m["name"]))
        number, stage = int(m["number"]), m["stage"]
        model.assignments[stage] = max(model.assignments.get(stage, 0), number)
        if number >= latest.get((model.name, stage), (0, ""))[0]:
            latest[(model.name, stage)] = (number, commit)
    for (name, stage), (_n, commit) in latest.items():
        on_commit = by_commit.get((name, commit))
        if on_commit:
            chosen = max(on_commit, key=lambda v: tags.version_key(v.version))
            models[name].stages[stage] = chosen.version
            chosen.stages.append(stage)
    for model in models.values():
        model.versions.sort(key=lambda v: tags.version_key(v.version))
    return dict(sorted(models.items()))


def resolve(models: dict[str, Model], ref: str) -> ModelVersion:
    """`NAME@vX.Y.Z`, `NAME@latest`, `NAME#STAGE` or `NAME` (its latest version)."""
    name, at, version = ref.partition("@")
    stage = None
    if not at:
        name, _hash, stage = ref.partition("#")
    model = models.get(tags.check_name(name))
    if model is None or not model.versions:
        raise BadInputError(f"no model {name!r} in the registry",
                            hint="`dvlite model ls` lists them (fetch tags with `git fetch --tags`)")
    if stage:
        if stage not in model.stages:
            known = ", ".join(sorted(model.stages)) or "none"
            raise BadInputError(f"model {name!r} has no version in stage {stage!r} (stages: {known})")
        version = model.stages[stage]
    if not version or version == "latest":
        return model.versions[-1]
    found = model.version(tags.check_version(version))
    if found is None:
        raise BadInputError(f"model {name!r} has no version {version}",
                            hint=f"versions: {', '.join(v.version for v in model.versions)}")
    return found


# --- making tags ----------------------------------------------------------------------------

def _artifact(repo: Repo, commit: str, path: str) -> Artifact:
    from dvlite.api.view import DataView

    view = DataView(repo, commit)
    tracked = view.tracked(path)
    if tracked is not None:
        p = tracked.pointer
        return Artifact(path, p.kind, p.digest.hex, p.size, p.files)
    try:
        node = view.lookup(path)
    except FileNotFoundError:
        raise BadInputError(f"{path} is not tracked by dvlite at {commit[:10]}",
                            hint="track it (`dvlite add`, or a stage's out) and commit first") from None
    if node.kind != "file" or node.digest is None:
        raise BadInputError(f"{path} is a directory inside tracked data; register the tracked "
                            "directory or a file")
    return Artifact(path, "file", node.digest, node.size, 1)


def _values(repo: Repo, commit: str) -> tuple[dict, dict]:
    from dvlite.pipelines.project import pipeline_at, read_at
    from dvlite.pipelines.values import flat_params, metrics_at, params_files

    def nest(flat: dict) -> dict:
        out: dict = {}
        for (path, key), value in flat.items():
            out.setdefault(path, {})[key] = value
        return out

    pipe = pipeline_at(repo, commit)
    params = flat_params(lambda rel: read_at(repo, commit, rel), params_files(pipe), commit[:10])
    return nest(metrics_at(repo, commit)), nest(params)


def register(repo: Repo, name: str, path: str, version: str, rev: str = "HEAD",
             stage: str | None = None) -> tuple[ModelVersion, str | None]:
    """Tag `rev` as version `version` of model `name`, whose artifact is the tracked `path`
    there; with `stage`, assign it too. Returns the version and the stage tag made."""
    worktree = repo.require_scm().worktree
    tags.check_name(name)
    tags.check_version(version)
    if stage is not None:
        tags.check_name(stage, "stage name")
    models = read_registry(worktree)
    if name in models and models[name].version(version) is not None:
        raise BadInputError(f"model {name!r} already has version {version} "
                            f"(tag {tags.version_tag(name, version)})", hint="choose a higher version")
    commit = repo.require_scm().resolve(rev)
    metrics, params = _values(repo, commit)
    record = VersionRecord(name, version, _artifact(repo, commit, path), metrics, params)
    scm.create_tag(worktree, tags.version_tag(name, version), commit, tags.version_message(record))
    made = ModelVersion(name, version, commit, 0, record)
    stage_tag = promote(repo, name, version, stage) if stage is not None else None
    return made, stage_tag


def promote(repo: Repo, name: str, version: str, stage: str) -> str:
    """Assign `stage` to a registered version: the next `NAME#STAGE#N` tag on its commit."""
    worktree = repo.require_scm().worktree
    tags.check_name(stage, "stage name")
    models = read_registry(worktree)
    target = resolve(models, f"{name}@{tags.check_version(version)}")
    number = models[name].assignments.get(stage, 0) + 1
    tag = tags.stage_tag(name, stage, number)
    scm.create_tag(worktree, tag, target.commit, tags.stage_message(name, version, stage))
    return tag


# --- reading artifacts ------------------------------------------------------------------------

def get(repo: Repo | None, ref: str, out: str | None, url: str | None = None,
        remote: str | None = None):
    """Copy a model version's artifact to `out`, fetched from the remote and verified, from
    this repository or the one at `url`, without a checkout. Returns (ModelVersion, GetResult)."""
    from dvlite.sources.repos import clone, get as get_path

    source = url or (repo.root if repo is not None else None)
    if source is None:
        raise BadInputError("not in a dvlite repository: name one with --repo URL")
    with tempfile.TemporaryDirectory(prefix="dvlite-model-") as workdir:
        if url is None:
            models = read_registry(repo.require_scm().worktree)
        else:
            git_dir, _rev, _commit = clone(url, None, workdir)
            models = read_registry(git_dir)
    chosen = resolve(models, ref)
    if chosen.problem is not None:
        raise chosen.problem
    artifact = chosen.record.artifact
    if artifact is None:
        raise BadInputError(f"{chosen.tag} was not made by dvlite: it records no artifact path")
    result = get_path(repo, source, artifact.path, chosen.commit,
                      out or os.path.basename(artifact.path), remote)
    return chosen, result
