"""Hostile repositories (issue 10): no path read from data may reach outside its place.

Each test builds an attack through the real CLI and git plus crafted files with correct digests
(tests/hostile.py), inside a sandbox with canaries beside and above the repositories, runs one
command, and asserts the contract:

- an invalid path from data (manifest entry, pointer name, lock out/dep, run record, import
  source path, merge-driver input) is an integrity error: exit 4, `unsafe path` and the offending
  path on stderr, no traceback, and nothing written (no canary changed, nothing new outside the
  repository or inside `.git/`, the workspace untouched);
- `fsck` reports such a pointer or manifest (exit 4, `unsafe path`, the pointer's name);
- a symlink is never traversed by a write or delete: a symlink that is itself the tracked path is
  replaced only with --force (without it: exit 1, nothing changed); a symlink in a parent
  component of a write is refused even with --force (non-zero exit, `symlink` and its path).

Layout of every sandbox: SANDBOX/canary.txt, SANDBOX/sibling/, SANDBOX/work/{canary.txt,sibling/},
and the repositories SANDBOX/work/{victim,attacker,remote,source,outside}. So `../../x` from a
tracked directory `victim/ds` lands in SANDBOX/work, where a failure is visible and harmless.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import git, run
from hostile import (
    HONEST,
    PAYLOAD,
    Sandbox,
    assert_fsck_reports,
    assert_symlink_refused,
    assert_unsafe,
    attack,
    cache_objects,
    clone,
    commit_symlink,
    dvlite,
    git_proc,
    honest,
    lock_bytes,
    make_repo,
    put_object,
    rewrite_run_record,
    single_file,
)

OK = ("ok.txt", HONEST)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


@pytest.fixture
def bare_sandbox(tmp_path: Path) -> Sandbox:
    """No symlink canary: a scan of the whole sandbox must not stop at it (pointer-name attacks)."""
    return Sandbox(tmp_path, links=False)


def files_under(top: Path) -> dict[str, bytes]:
    return {p.relative_to(top).as_posix(): p.read_bytes()
            for p in sorted(top.rglob("*")) if p.is_file()}


# --- 1. manifest entries -------------------------------------------------------------------------

def _absolute(sb: Sandbox) -> str:
    return str(sb.path("work/ABS_ESCAPED.txt"))


# name -> (sandbox -> (the tracked directory `ds` as the attacker crafts it, the path stderr shows))
ENTRY_ATTACKS = {
    "dotdot": lambda sb: (attack(OK, ("../../escaped.txt", PAYLOAD)), "../../escaped.txt"),
    "inner-dotdot": lambda sb: (attack(OK, ("a/../../../x", PAYLOAD)), "a/../../../x"),
    "git-hook": lambda sb: (attack(OK, ("../.git/hooks/pre-commit", sb.hook, True)),
                            "../.git/hooks/pre-commit"),
    "absolute": lambda sb: (attack(OK, (_absolute(sb), PAYLOAD)), _absolute(sb)),
    "nul": lambda sb: (attack(OK, ("evil\x00name", PAYLOAD)), "evil"),
    "empty-component": lambda sb: (attack(OK, ("sub//f.txt", PAYLOAD)), "sub//f.txt"),
    "dot-component": lambda sb: (attack(OK, ("sub/./f.txt", PAYLOAD)), "sub/./f.txt"),
    "leading-dot": lambda sb: (attack(OK, ("./lead.txt", PAYLOAD)), "./lead.txt"),
    "trailing-slash": lambda sb: (attack(OK, ("tail/", PAYLOAD)), "tail/"),
    "dot-git-inside": lambda sb: (attack(OK, (".git/hooks/x", sb.hook, True)), ".git/hooks/x"),
    "duplicate": lambda sb: (attack(OK, ("dup.txt", b"one\n"), ("dup.txt", b"two\n")), "dup.txt"),
    "prefix": lambda sb: (attack(OK, ("clash", b"a file\n"), ("clash/inner.txt", b"below\n")),
                          "clash"),
}
ALL_ENTRIES = list(ENTRY_ATTACKS)
SOME_ENTRIES = ["dotdot", "git-hook", "absolute", "duplicate"]


def planted(sb: Sandbox, name: str) -> tuple[Path, str]:
    """The victim's repository after a commit adding a hostile `ds` (its objects in the cache)."""
    victim = make_repo(sb.work / "victim")
    evil, shown = ENTRY_ATTACKS[name](sb)
    evil.into_cache(victim).commit(victim, "ds")
    return victim, shown


def published(sb: Sandbox, name: str) -> tuple[Path, str]:
    """The attacker's repository: a hostile `ds` committed, its objects on the shared remote."""
    remote = sb.work / "remote"
    attacker = make_repo(sb.work / "attacker", remote)
    evil, shown = ENTRY_ATTACKS[name](sb)
    evil.onto_remote(remote).commit(attacker, "ds")
    return attacker, shown


@pytest.mark.parametrize("force", [False, True], ids=["checkout", "checkout-force"])
@pytest.mark.parametrize("name", ALL_ENTRIES)
def test_manifest_entry_checkout(sandbox, name, force):
    victim, shown = planted(sandbox, name)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "checkout", *(["--force"] if force else []))
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("force", [False, True], ids=["pull", "pull-force"])
@pytest.mark.parametrize("name", ALL_ENTRIES)
def test_manifest_entry_pull_in_a_fresh_clone(sandbox, name, force):
    attacker, shown = published(sandbox, name)
    victim = clone(attacker, sandbox.work / "victim")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "pull", *(["--force"] if force else []))
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("hooks", [False, True], ids=["no-hooks", "dvlite-hooks-installed"])
def test_pulled_commit_cannot_plant_a_git_hook(sandbox, hooks):
    """The full chain: attacker pushes the manifest and commits the pointer; the victim clones,
    pulls, and commits: the attacker's pre-commit hook must never run."""
    attacker, shown = published(sandbox, "git-hook")
    victim = clone(attacker, sandbox.work / "victim")
    if hooks:
        run(victim, "install")  # writes .git/info/attributes: nothing to commit
    watch = sandbox.watch(victim)
    pulled = dvlite(victim, "pull")
    damage = "\n".join(watch.problems())  # before the commit, which changes .git itself
    committed = git_proc(victim, "commit", "--allow-empty", "-q", "-m", "the victim's next commit")
    assert not sandbox.marker.exists(), (
        f"the victim's `git commit` ran the attacker's hook (git: {committed.stderr.strip()})\n"
        f"pull: exit {pulled.returncode}\n{pulled.stderr}{damage}")
    assert not damage, f"the pull was not harmless:\n{damage}\n{pulled.stderr}"
    assert_unsafe(pulled, shown)


@pytest.mark.parametrize("name", ALL_ENTRIES)
def test_manifest_entry_status(sandbox, name):
    victim, shown = planted(sandbox, name)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "status")
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("name", ALL_ENTRIES)
def test_manifest_entry_fsck(sandbox, name):
    victim, _shown = planted(sandbox, name)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "fsck")
    watch.assert_harmless(proc, cache=True)
    assert_fsck_reports(proc, "ds.dvl")


@pytest.mark.parametrize("force", [False, True], ids=["gc", "gc-force"])
@pytest.mark.parametrize("name", SOME_ENTRIES)
def test_manifest_entry_gc_keeps_everything(sandbox, name, force):
    victim, shown = planted(sandbox, name)
    put_object(cache_objects(victim), b"an unused object gc would collect\n")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "gc", *(["--force"] if force else []))
    watch.assert_harmless(proc, cache=True)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("name", SOME_ENTRIES)
def test_manifest_entry_get_outside_any_repository(sandbox, name):
    attacker, shown = published(sandbox, name)
    here = sandbox.work / "elsewhere"  # no repository here: get uses a temporary cache
    here.mkdir()
    watch = sandbox.watch(None)
    proc = dvlite(here, "get", str(attacker), "ds")
    watch.assert_harmless(proc)  # not even the output path: get fails before writing
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("name", SOME_ENTRIES)
def test_manifest_entry_get_inside_a_repository(sandbox, name):
    attacker, shown = published(sandbox, name)
    victim = make_repo(sandbox.work / "victim")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "get", str(attacker), "ds", "-o", "fetched")
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("name", SOME_ENTRIES)
def test_manifest_entry_import(sandbox, name):
    attacker, shown = published(sandbox, name)
    victim = make_repo(sandbox.work / "victim")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "import", str(attacker), "ds")
    watch.assert_harmless(proc)  # no pointer, no .gitignore line either
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("name", SOME_ENTRIES)
def test_manifest_entry_update_of_an_import(sandbox, name):
    """An honest import; the source's next commit makes `ds` hostile; `dvlite update`."""
    remote = sandbox.work / "remote"
    source = make_repo(sandbox.work / "source", remote)
    honest({"ok.txt": HONEST}).onto_remote(remote).commit(source, "ds")
    victim = make_repo(sandbox.work / "victim")
    run(victim, "import", str(source), "ds")
    git(victim, "add", "ds.dvl", ".gitignore")
    git(victim, "commit", "-q", "-m", "import ds")
    evil, shown = ENTRY_ATTACKS[name](sandbox)
    evil.onto_remote(remote).commit(source, "ds", "ds, hostile now")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "update")
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


def test_get_outside_any_repository_writes_only_its_output(sandbox):
    """A regression guard for the honest case: the output path and nothing else appears."""
    remote = sandbox.work / "remote"
    source = make_repo(sandbox.work / "source", remote)
    data = {"ok.txt": HONEST, "sub/more.txt": b"more\n"}
    honest(data).onto_remote(remote).commit(source, "ds")
    here = sandbox.work / "elsewhere"
    here.mkdir()
    watch = sandbox.watch(None)
    proc = dvlite(here, "get", str(source), "ds")
    assert proc.returncode == 0, proc.stderr
    watch.assert_harmless(proc, allow_new=(here / "ds",))
    assert files_under(here / "ds") == data


# --- 2. pointer file names that resolve to `..`, the root, or into .dvlite -----------------------

POINTER_NAMES = {
    "dotdotdot-dir": ("...dvl", "dir"),  # tracks `..`: the repository's parent
    "dotdotdot-file": ("...dvl", "file"),
    "root": (".dvl", "dir"),  # tracks "": the repository root
    "sub-dotdotdot": ("sub/...dvl", "dir"),  # tracks `sub/..`: the root again
    "sub-dot": ("sub/.dvl", "dir"),  # tracks `sub/` (an empty component)
    "into-dvlite": (".dvlite/config.local.dvl", "file"),  # overwrites the private config
}
SOME_NAMES = ["dotdotdot-dir", "root", "sub-dotdotdot"]


def _named(kind: str):
    return honest({"x.txt": PAYLOAD}) if kind == "dir" else single_file(PAYLOAD)


def _commit_pointer(repo: Path, name: str, data) -> None:
    (repo / "sub").mkdir(exist_ok=True)
    (repo / "sub" / "notes.txt").write_bytes(b"the victim's notes, in git\n")
    (repo / "README.md").write_bytes(b"the victim's readme, in git\n")
    pointer = repo / name
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_bytes(data.pointer())
    git(repo, "add", "-f", name, "sub/notes.txt", "README.md")
    git(repo, "commit", "-q", "-m", f"add {name}")


def pointer_planted(sb: Sandbox, case: str) -> tuple[Path, str]:
    name, kind = POINTER_NAMES[case]
    victim = make_repo(sb.work / "victim")
    data = _named(kind).into_cache(victim)
    _commit_pointer(victim, name, data)
    return victim, name


@pytest.mark.parametrize("force", [False, True], ids=["checkout", "checkout-force"])
@pytest.mark.parametrize("case", list(POINTER_NAMES))
def test_pointer_name_checkout(bare_sandbox, case, force):
    victim, name = pointer_planted(bare_sandbox, case)
    watch = bare_sandbox.watch(victim)
    proc = dvlite(victim, "checkout", *(["--force"] if force else []))
    watch.assert_harmless(proc)  # the parent, the repository, .git and .dvlite all survive
    assert_unsafe(proc, name)


@pytest.mark.parametrize("force", [False, True], ids=["pull", "pull-force"])
@pytest.mark.parametrize("case", list(POINTER_NAMES))
def test_pointer_name_pull_in_a_fresh_clone(bare_sandbox, case, force):
    name, kind = POINTER_NAMES[case]
    remote = bare_sandbox.work / "remote"
    attacker = make_repo(bare_sandbox.work / "attacker", remote)
    _commit_pointer(attacker, name, _named(kind).onto_remote(remote))
    victim = clone(attacker, bare_sandbox.work / "victim")
    watch = bare_sandbox.watch(victim)
    proc = dvlite(victim, "pull", *(["--force"] if force else []))
    watch.assert_harmless(proc)
    assert_unsafe(proc, name)


@pytest.mark.parametrize("command", ["status", "gc"])
@pytest.mark.parametrize("case", SOME_NAMES)
def test_pointer_name_status_and_gc(bare_sandbox, case, command):
    victim, name = pointer_planted(bare_sandbox, case)
    watch = bare_sandbox.watch(victim)
    proc = dvlite(victim, command)
    watch.assert_harmless(proc, cache=True)
    assert_unsafe(proc, name)


@pytest.mark.parametrize("case", list(POINTER_NAMES))
def test_pointer_name_fsck(bare_sandbox, case):
    victim, name = pointer_planted(bare_sandbox, case)
    watch = bare_sandbox.watch(victim)
    proc = dvlite(victim, "fsck")
    watch.assert_harmless(proc, cache=True)
    assert_fsck_reports(proc, name)


# --- 3. dvlite.lock outs and deps ----------------------------------------------------------------

LOCK_ATTACKS = {
    "out-dotdot": ("outs", lambda sb: "../LOCK_ESCAPED.txt"),
    "out-git-hook": ("outs", lambda sb: ".git/hooks/post-merge"),
    "out-absolute": ("outs", lambda sb: str(sb.path("work/LOCK_ABS.txt"))),
    "out-into-dvlite": ("outs", lambda sb: ".dvlite/config.local"),
    "dep-dotdot": ("deps", lambda sb: "../LOCK_DEP.txt"),
}
SOME_LOCKS = ["out-dotdot", "out-git-hook"]


def hostile_lock(sb: Sandbox, case: str) -> tuple[bytes, str, object]:
    role, path_of = LOCK_ATTACKS[case]
    path = path_of(sb)
    data = single_file(PAYLOAD)
    if role == "outs":
        return lock_bytes(outs=[data.lock_entry(path)]), path, data
    return lock_bytes(deps=[data.lock_entry(path, cache=None)]), path, data


def lock_planted(sb: Sandbox, case: str) -> tuple[Path, str]:
    victim = make_repo(sb.work / "victim")
    lock, shown, data = hostile_lock(sb, case)
    data.into_cache(victim)  # the out's digest is cached: checkout would write it
    (victim / "dvlite.lock").write_bytes(lock)
    git(victim, "add", "dvlite.lock")
    git(victim, "commit", "-q", "-m", "a lock")
    return victim, shown


@pytest.mark.parametrize("force", [False, True], ids=["checkout", "checkout-force"])
@pytest.mark.parametrize("case", list(LOCK_ATTACKS))
def test_lock_path_checkout(sandbox, case, force):
    victim, shown = lock_planted(sandbox, case)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "checkout", *(["--force"] if force else []))
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("command", ["status", "gc"])
@pytest.mark.parametrize("case", SOME_LOCKS)
def test_lock_path_status_and_gc(sandbox, case, command):
    victim, shown = lock_planted(sandbox, case)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command)
    watch.assert_harmless(proc, cache=True)
    assert_unsafe(proc, shown)


@pytest.mark.parametrize("case", list(LOCK_ATTACKS))
def test_lock_path_fsck(sandbox, case):
    victim, _shown = lock_planted(sandbox, case)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "fsck")
    watch.assert_harmless(proc, cache=True)
    assert_fsck_reports(proc, "dvlite.lock")


@pytest.mark.parametrize("case", SOME_LOCKS)
def test_lock_path_pull_in_a_fresh_clone(sandbox, case):
    remote = sandbox.work / "remote"
    attacker = make_repo(sandbox.work / "attacker", remote)
    lock, shown, data = hostile_lock(sandbox, case)
    data.onto_remote(remote)
    (attacker / "dvlite.lock").write_bytes(lock)
    git(attacker, "add", "dvlite.lock")
    git(attacker, "commit", "-q", "-m", "a lock")
    victim = clone(attacker, sandbox.work / "victim")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "pull")
    watch.assert_harmless(proc)
    assert_unsafe(proc, shown)


MALFORMED_STAGES = {  # shapes found by the fuzzer (tests/test_fuzz_parsers.py) and kin
    "deps-int": ({"cmd": "true", "deps": -8388609}, "deps must be a list"),
    "outs-mapping": ({"cmd": "true", "outs": {"path": "x"}}, "outs must be a list"),
    "cmd-mapping": ({"cmd": {"sh": "rm -rf /"}}, "cmd must be a string or a list of strings"),
}


@pytest.mark.parametrize("command", ["status", "checkout", "gc"])
@pytest.mark.parametrize("case", list(MALFORMED_STAGES))
def test_malformed_lock_stage_is_a_one_line_error(sandbox, case, command):
    body, message = MALFORMED_STAGES[case]
    victim = make_repo(sandbox.work / "victim")
    (victim / "dvlite.lock").write_bytes(yaml.safe_dump({"schema": 1, "stages": {"evil": body}}).encode())
    git(victim, "add", "dvlite.lock")
    git(victim, "commit", "-q", "-m", "a lock")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command)
    watch.assert_harmless(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "dvlite.lock" in proc.stderr and message in proc.stderr, proc.stderr


# --- 4. symlinks committed to git ----------------------------------------------------------------

DS = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}


def _outside(sb: Sandbox, files: dict[str, bytes]) -> Path:
    """The victim's own directory beside the repository (what a committed symlink points at)."""
    top = sb.work / "outside"
    for rel, data in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    return top


def linked_dir_victim(sb: Sandbox, target: str) -> Path:
    """`ds` is tracked (pushed), then the attacker commits `ds` as a symlink to `target`; the
    victim clones and fetches. Behind `../outside` lies a file whose bytes the cache holds (so
    nothing there looks like unsaved work to a checkout that follows the link)."""
    _outside(sb, {"copy.txt": DS["a.txt"]})
    remote = sb.work / "remote"
    attacker = make_repo(sb.work / "attacker", remote)
    honest(DS).onto_remote(remote).commit(attacker, "ds")
    commit_symlink(attacker, "ds", target, "ds is a link now")
    victim = clone(attacker, sb.work / "victim")
    run(victim, "fetch")
    return victim


LINK_TARGETS = {"outside": "../outside", "git-hooks": ".git/hooks"}


@pytest.mark.parametrize("target", list(LINK_TARGETS))
def test_status_does_not_list_files_behind_a_symlinked_tracked_dir(sandbox, target):
    victim = linked_dir_victim(sandbox, LINK_TARGETS[target])
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "status")
    watch.assert_harmless(proc)
    behind = "copy.txt" if target == "outside" else ".sample"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert behind not in proc.stdout + proc.stderr, (
        f"status reports files behind the symlink as tracked content:\n{proc.stdout}{proc.stderr}")


@pytest.mark.parametrize("command", ["checkout", "pull"])
@pytest.mark.parametrize("target", list(LINK_TARGETS))
def test_symlinked_tracked_dir_is_refused_without_force(sandbox, target, command):
    victim = linked_dir_victim(sandbox, LINK_TARGETS[target])
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command)
    watch.assert_harmless(proc)  # the link itself is kept too
    assert proc.returncode == 1, f"expected exit 1\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["checkout", "pull"])
@pytest.mark.parametrize("target", list(LINK_TARGETS))
def test_symlinked_tracked_dir_is_replaced_with_force(sandbox, target, command):
    victim = linked_dir_victim(sandbox, LINK_TARGETS[target])
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command, "--force")
    watch.assert_harmless(proc, workspace=False)  # the link's target is byte-identical
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    ds = victim / "ds"
    assert not ds.is_symlink() and ds.is_dir()
    assert files_under(ds) == DS


def linked_file_victim(sb: Sandbox) -> tuple[Path, Path]:
    """`model.bin` is tracked, then committed as a symlink to the victim's own `weights.bin`,
    whose bytes happen to be in the cache (they are those of another tracked file)."""
    weights = _outside(sb, {"weights.bin": b"public notes\n"}) / "weights.bin"
    remote = sb.work / "remote"
    attacker = make_repo(sb.work / "attacker", remote)
    single_file(b"public notes\n").onto_remote(remote).commit(attacker, "notes.bin")
    single_file(b"model v1\n").onto_remote(remote).commit(attacker, "model.bin")
    commit_symlink(attacker, "model.bin", "../outside/weights.bin", "model.bin is a link now")
    victim = clone(attacker, sb.work / "victim")
    run(victim, "fetch")
    return victim, weights


@pytest.mark.parametrize("command", ["checkout", "pull"])
def test_symlinked_tracked_file_is_refused_without_force(sandbox, command):
    victim, _weights = linked_file_victim(sandbox)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command, "model.bin")
    watch.assert_harmless(proc)
    assert proc.returncode == 1, f"expected exit 1\n{proc.stdout}\n{proc.stderr}"
    assert (victim / "model.bin").is_symlink()


@pytest.mark.parametrize("command", ["checkout", "pull"])
def test_symlinked_tracked_file_is_replaced_with_force(sandbox, command):
    victim, weights = linked_file_victim(sandbox)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command, "--force", "model.bin")
    watch.assert_harmless(proc, workspace=False)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    model = victim / "model.bin"
    assert not model.is_symlink() and model.read_bytes() == b"model v1\n"
    assert weights.read_bytes() == b"public notes\n"


COMMANDS = [("checkout",), ("checkout", "--force"), ("pull",), ("pull", "--force")]
COMMAND_IDS = ["checkout", "checkout-force", "pull", "pull-force"]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_symlink_in_a_parent_component_is_refused(sandbox, command):
    """dvlite.lock caches an out `linked/ds`; git has `linked -> ../outside`."""
    _outside(sandbox, {"keep.txt": b"the victim's own file\n"})
    remote = sandbox.work / "remote"
    attacker = make_repo(sandbox.work / "attacker", remote)
    data = honest({"f.txt": PAYLOAD}).onto_remote(remote)
    (attacker / "dvlite.lock").write_bytes(lock_bytes(outs=[data.lock_entry("linked/ds")]))
    git(attacker, "add", "dvlite.lock")
    git(attacker, "commit", "-q", "-m", "a stage out")
    commit_symlink(attacker, "linked", "../outside")
    victim = clone(attacker, sandbox.work / "victim")
    if command[0] == "checkout":
        run(victim, "fetch")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, *command)
    watch.assert_harmless(proc)
    assert_symlink_refused(proc, "linked")


INNER_LINKS = {
    "outside": ("../../outside", ("sub/f.txt", PAYLOAD)),
    "git-hooks": ("../.git/hooks", ("sub/pre-commit", None, True)),  # None: the hook script
}


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
@pytest.mark.parametrize("target", list(INNER_LINKS))
def test_symlink_inside_a_tracked_dir_is_never_written_through(sandbox, target, command):
    """`ds` lists `sub/...`; git has `ds/sub` as a symlink out of the directory."""
    link, entry = INNER_LINKS[target]
    if entry[1] is None:
        entry = (entry[0], sandbox.hook, True)
    _outside(sandbox, {"f.txt": b"the victim's own f.txt\n"})
    remote = sandbox.work / "remote"
    attacker = make_repo(sandbox.work / "attacker", remote)
    attack(("top.txt", HONEST), entry).onto_remote(remote).commit(attacker, "ds")
    commit_symlink(attacker, "ds/sub", link)
    victim = clone(attacker, sandbox.work / "victim")
    if command[0] == "checkout":
        run(victim, "fetch")
    watch = sandbox.watch(victim)
    proc = dvlite(victim, *command)
    watch.assert_harmless(proc, workspace=False)
    assert (victim / "ds" / "sub").is_symlink()
    assert_symlink_refused(proc, "ds/sub")


def linked_inside_victim(sb: Sandbox) -> Path:
    """`ds` is tracked; git also has the victim's code `src/main.py` and `ds/sub -> ../src`,
    a symlink inside the tracked directory to a directory inside the repository."""
    remote = sb.work / "remote"
    attacker = make_repo(sb.work / "attacker", remote)
    (attacker / "src").mkdir()
    (attacker / "src" / "main.py").write_bytes(b"print('the victim's code')\n")
    git(attacker, "add", "src/main.py")
    git(attacker, "commit", "-q", "-m", "code")
    honest({"top.txt": HONEST}).onto_remote(remote).commit(attacker, "ds")
    commit_symlink(attacker, "ds/sub", "../src")
    victim = clone(attacker, sb.work / "victim")
    run(victim, "fetch")
    return victim


@pytest.mark.parametrize("command", ["checkout", "pull"])
def test_force_never_deletes_through_a_symlink_inside_a_tracked_dir(sandbox, command):
    """--force discards what the manifest does not list; `ds/sub/main.py` is the victim's
    `src/main.py` seen through a symlink: it must survive."""
    victim = linked_inside_victim(sandbox)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, command, "--force")
    watch.assert_harmless(proc, workspace=False)
    assert "Traceback" not in proc.stdout + proc.stderr
    main = victim / "src" / "main.py"
    assert main.is_file() and not main.is_symlink(), f"src/main.py was deleted\n{proc.stderr}"
    assert main.read_bytes() == b"print('the victim's code')\n"


def test_status_does_not_list_files_behind_a_symlink_inside_a_tracked_dir(sandbox):
    victim = linked_inside_victim(sandbox)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "status")
    watch.assert_harmless(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "main.py" not in proc.stdout + proc.stderr, (
        f"status reports files behind the symlink as tracked content:\n{proc.stdout}{proc.stderr}")


# --- 5. imports: the source block of a pointer ---------------------------------------------------

@pytest.mark.parametrize("case", ["dotdot", "absolute", "inner-dotdot"])
def test_import_source_path_must_stay_inside_the_source(sandbox, case):
    remote = sandbox.work / "remote"
    source = make_repo(sandbox.work / "source", remote)
    data = honest({"f.txt": HONEST}).onto_remote(remote).commit(source, "x")
    path = {"dotdot": "../x", "absolute": str(source / "x"), "inner-dotdot": "x/../../y"}[case]
    rev_lock = git(source, "rev-parse", "HEAD").strip()
    victim = make_repo(sandbox.work / "victim")
    data.into_cache(victim).commit(victim, "imp", "a crafted import", source={
        "url": str(source), "rev": "HEAD", "rev_lock": rev_lock, "path": path})
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "update")
    watch.assert_harmless(proc)
    assert_unsafe(proc, path)


# --- 6. run records in the run cache -------------------------------------------------------------

PIPELINE = """\
stages:
  make:
    cmd: cp in.txt out.txt
    deps:
    - in.txt
    outs:
    - out.txt
"""


@pytest.mark.parametrize("cache", [True, False], ids=["cached-out", "uncached-out"])
def test_run_record_outs_must_stay_inside_the_repository(sandbox, cache):
    """A run record whose key matches the stage names an out outside; `repro` restores it."""
    victim = make_repo(sandbox.work / "victim")
    (victim / "dvlite.yaml").write_text(PIPELINE)
    (victim / "in.txt").write_bytes(b"input\n")
    run(victim, "repro")
    records = list((victim / ".dvlite" / "cache" / "runs").iterdir())
    assert len(records) == 1
    evil = single_file(PAYLOAD).into_cache(victim)
    rewrite_run_record(records[0], [evil.lock_entry("../RUN_ESCAPED.txt", cache=cache)])
    (victim / "dvlite.lock").unlink()  # the stage must run again: the record's key still matches
    (victim / "out.txt").unlink()
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "repro")
    watch.assert_harmless(proc)
    assert_unsafe(proc, "../RUN_ESCAPED.txt")


# --- 7. the merge driver -------------------------------------------------------------------------

BASE = {"a.txt": b"a\n"}
SIDES = {
    "ancestor": BASE,
    "ours": {**BASE, "b.txt": b"ours\n"},
    "theirs": {**BASE, "c.txt": b"theirs\n"},
}


def merge_inputs(victim: Path, hostile: str | None) -> list[str]:
    """git's %O %A %B: three pointer files in the work tree; `hostile` names the side whose
    manifest also lists `../../escaped.txt`. Every manifest is in the cache."""
    names = []
    for side, files in SIDES.items():
        data = honest(files)
        if side == hostile:
            data = attack(*files.items(), ("../../escaped.txt", PAYLOAD))
        data.into_cache(victim)
        path = victim / f".merge_file_{side}"
        path.write_bytes(data.pointer())
        names.append(path.name)
    return names


@pytest.mark.parametrize("hostile", list(SIDES))
def test_merge_driver_refuses_hostile_manifests(sandbox, hostile):
    victim = make_repo(sandbox.work / "victim")
    inputs = merge_inputs(victim, hostile)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "merge-driver", *inputs, "ds.dvl")
    watch.assert_harmless(proc)  # %A (ours) is not rewritten
    assert_unsafe(proc, "../../escaped.txt")


@pytest.mark.parametrize("name", ["../x.dvl", "...dvl", "sub/../../x.dvl"])
def test_merge_driver_refuses_an_unsafe_pointer_name(sandbox, name):
    victim = make_repo(sandbox.work / "victim")
    inputs = merge_inputs(victim, None)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "merge-driver", *inputs, name)
    watch.assert_harmless(proc)
    assert_unsafe(proc, name)


def test_merge_driver_refuses_a_hostile_lock(sandbox):
    victim = make_repo(sandbox.work / "victim")
    honest_out = single_file(HONEST).into_cache(victim)
    evil = single_file(PAYLOAD).into_cache(victim)
    sides = {
        "ancestor": lock_bytes(outs=[honest_out.lock_entry("out.txt")]),
        "ours": lock_bytes(outs=[honest_out.lock_entry("out.txt")]),
        "theirs": lock_bytes(outs=[evil.lock_entry("../LOCK_ESCAPED.txt")]),
    }
    for side, data in sides.items():
        (victim / f".merge_file_{side}").write_bytes(data)
    watch = sandbox.watch(victim)
    proc = dvlite(victim, "merge-driver", *(f".merge_file_{s}" for s in sides), "dvlite.lock")
    watch.assert_harmless(proc)
    assert_unsafe(proc, "../LOCK_ESCAPED.txt")


# --- further attacks: dvlite's own git hooks as the trigger --------------------------------------

def test_git_checkout_with_dvlite_hooks_does_not_write_outside(sandbox):
    """With `dvlite install`, a plain `git checkout` of a teammate's branch runs `dvlite checkout`
    in the post-checkout hook: the hostile manifest must be refused there too."""
    victim = make_repo(sandbox.work / "victim")
    run(victim, "install")  # writes .git/info/attributes: nothing to commit
    git(victim, "branch", "teammate")
    evil, shown = ENTRY_ATTACKS["dotdot"](sandbox)
    evil.into_cache(victim)  # as a `dvlite fetch --all-branches` brings it
    git(victim, "checkout", "-q", "teammate")
    evil.commit(victim, "ds", "the teammate's hostile data")
    git(victim, "checkout", "-q", "main")
    watch = sandbox.watch(victim)
    proc = git_proc(victim, "checkout", "-q", "teammate")
    watch.assert_harmless(proc, workspace=False)
    assert "unsafe path" in proc.stderr and shown in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
