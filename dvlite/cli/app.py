"""The typer application: each command parses options, calls one operation, renders the result."""

from __future__ import annotations

import sys

import typer

from dvlite import __version__
from dvlite.cli import output as ui
from dvlite.errors import ChangesWouldBeLostError, DvliteError

# The commands each module of dvlite/cli registers, modules in the order `--help` lists them.
# A run imports only the module of the command it names (tests/test_commands.py holds this
# table to what the modules register).
COMMANDS = {
    "tracking": ("init", "add", "status", "checkout", "diff", "remove", "move", "unprotect", "ls"),
    "remotes": ("push", "pull", "fetch", "remote"),
    "maintenance": ("gc", "fsck", "config", "doctor", "cache"),
    "pipeline": ("repro", "dag", "lineage", "stage", "params", "metrics"),
    "gitside": ("install", "merge-driver", "hook"),
    "data": ("get", "import", "update", "list", "import-url", "get-url", "ls-url"),
    "migrate": ("migrate",),
    "tables": ("table", "validate", "drift"),
    "experiments": ("exp", "queue"),
    "plots": ("plots",),
    "models": ("model",),
    "verbs": ("commit", "freeze", "unfreeze", "du", "root", "destroy", "check-ignore"),
}
MODULE_OF = {name: module for module, names in COMMANDS.items() for name in names}


def _version(value: bool) -> None:
    if value:
        ui.say(f"dvlite {__version__}")
        raise typer.Exit()


def root(
    verbose: bool = typer.Option(False, "-v", "--verbose",
                                 help="More detail, and tracebacks on errors (anywhere on the line)."),
    quiet: bool = typer.Option(False, "-q", "--quiet",
                               help="Print nothing but errors; no progress (anywhere on the line)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """dvlite: data and model versioning beside git."""


def build_app(modules=tuple(COMMANDS)) -> typer.Typer:
    """The typer application with the commands of `modules` (module names in dvlite/cli)."""
    import importlib

    app = typer.Typer(
        name="dvlite",
        help="Version data and models beside your code in git.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for module in modules:
        importlib.import_module(f"dvlite.cli.{module}").register(app)
    return app


# --- entry point ----------------------------------------------------------------------

class Interrupted(BaseException):
    """Ctrl-C, raised in place of KeyboardInterrupt so that no library `except` swallows it
    and typer does not turn it into a silent exit."""


def _on_sigint(signum, frame) -> None:
    raise Interrupted()


def _click_exceptions():
    """The click exception classes typer raises (typer >= 0.26 vendors click as typer._click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions
    return exceptions


VERBOSE, QUIET = ("-v", "--verbose"), ("-q", "--quiet")


def split_modes(argv: list[str]) -> tuple[list[str], bool, bool]:
    """`-v` and `-q` taken out wherever they stand (before a `--`), as git and DVC accept them
    before or after the command name: (the other arguments, verbose, quiet)."""
    rest, verbose, quiet = [], False, False
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        if arg in VERBOSE:
            verbose = True
        elif arg in QUIET:
            quiet = True
        else:
            rest.append(arg)
    return rest, verbose, quiet


def paths_after_double_dash(argv: list[str]) -> list[str]:
    """`dvlite diff A B -- PATH...` as git writes it: each PATH becomes `--targets PATH`."""
    if not argv or argv[0] != "diff" or "--" not in argv:
        return argv
    cut = argv.index("--")
    return argv[:cut] + [arg for path in argv[cut + 1:] for arg in ("--targets", path)]


def app_for(argv: list[str]) -> typer.Typer:
    """The application with only the command named first on the line: importing every CLI
    module, and typer turning every registered command into a click command before running
    one, would cost ~30 ms of every run. Help, completion and unknown names get the whole
    application."""
    import os

    name = argv[0] if argv else ""
    if name not in MODULE_OF or os.environ.get("_DVLITE_COMPLETE"):
        return build_app()
    app = build_app((MODULE_OF[name],))
    app.registered_commands = [c for c in app.registered_commands
                               if (c.name or c.callback.__name__.lower().replace("_", "-")) == name]
    app.registered_groups = [g for g in app.registered_groups if g.name == name]
    return app


def main() -> None:
    import signal

    click = _click_exceptions()
    argv, verbose, quiet = split_modes(sys.argv[1:])
    argv = paths_after_double_dash(argv)
    ui.Mode.verbose, ui.Mode.quiet = verbose, quiet
    for stream in (sys.stdout, sys.stderr):  # print non-UTF-8 file names as their own bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    as_json = "--json" in argv
    from dvlite.cli.common import use_config_scopes

    use_config_scopes()  # the system and global config files every Config reads
    if verbose:  # the backends' own log records (gcsfs, adlfs...) are shown only with -v
        import logging

        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        code = app_for(argv)(args=argv, prog_name="dvlite", standalone_mode=False)
    except ChangesWouldBeLostError as exc:
        _fail(exc, verbose, as_json, paths=exc.paths)
    except DvliteError as exc:
        _fail(exc, verbose, as_json)
    except (Interrupted, KeyboardInterrupt, typer.Abort):
        ui.error("interrupted")
        sys.exit(130)
    except click.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage: unknown option, missing argument
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "dvlite"
        _fail(DvliteError(exc.format_message(), hint=f"see `{command} --help`"),
              verbose, as_json, code=exc.exit_code)
    except OSError as exc:
        _fail(_os_error(exc), verbose, as_json, cause=exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        _fail(
            DvliteError(f"unexpected {type(exc).__name__}: {exc}",
                        hint="run again with --verbose for the traceback and report it"),
            verbose, as_json, cause=exc,
        )
    sys.exit(code if isinstance(code, int) else 0)


def _os_error(exc: OSError) -> DvliteError:
    import errno

    where = f": {exc.filename}" if exc.filename else ""
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space (`dvlite gc` lists what the cache no longer needs), then run it again"
    return DvliteError(f"{exc.strerror or exc}{where}", hint=hint)


def _fail(exc: DvliteError, verbose: bool, as_json: bool, paths=None, cause=None,
          code: int | None = None) -> None:
    if verbose:
        import traceback

        traceback.print_exception(cause or exc)
    code = exc.exit_code if code is None else code
    if as_json:
        ui.emit_json({"error": exc.message, "hint": exc.hint, "exit_code": code, "paths": paths})
    else:
        ui.error(exc.message, exc.hint)
        if paths:
            ui.listing(paths, cap=20, console=ui.err)
    sys.exit(code)
