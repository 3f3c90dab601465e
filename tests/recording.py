"""A Shell for tests that writes into a given output folder and keeps what it says in `.said`."""

from __future__ import annotations


def recording_shell(manager, outdir, model: str, **kwargs):
    from invoke_shell.shell import Shell

    said: list[str] = []
    shell = Shell(manager, outdir=str(outdir), say=said.append, model=model, **kwargs)
    shell.said = said
    return shell
