"""Questions at the prompt, shared by the commands that ask (the model and history commands)."""

from __future__ import annotations

from .errors import ParseError


def ask(shell, question: str, default: str) -> str:
    """Ask through the prompt when interactive (the default pre-filled); otherwise take the default."""
    if shell.ask is None:
        return default
    answer = shell.ask(f"{question}: ", default)
    return answer.strip() or default


def yes(shell, question: str) -> bool:
    """A y/N question at the prompt (nothing pre-filled; Enter means no)."""
    return ask(shell, f"{question} [y/N]", "").lower() in ("y", "yes")


def confirm(shell, question: str, given_yes: bool) -> bool:
    """True when `--yes` was given or the user says yes; outside the prompt `--yes` is required."""
    if given_yes:
        return True
    if shell.ask is None:
        raise ParseError(f"{question.rstrip('?')}: needs confirmation; add --yes when not at the prompt")
    return yes(shell, question)
