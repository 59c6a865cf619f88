"""The ``command`` handler: run a configured program with the command's values as argv items.

``[executor.commands]`` maps a remedy name (or ``default``) to an argv template. The program
(item 0) is fixed text from the executor's configuration. Every placeholder must be a whole
item — ``{action_id}``, ``{incident_id}``, ``{service}``, ``{area}``, ``{cause}``,
``{remedy}``, ``{attempt}``, ``{device}``, ``{dry_run}`` or ``{param:NAME}`` — and becomes
exactly one argument. The program runs with ``shell=False`` and a timeout; string parameters
are passed only if they are one of the catalog's enum values.

>>> template = ["/usr/bin/tool", "--remedy", "{remedy}", "--factor", "{param:factor}"]
>>> from perfloop.actions.handlers import _example_command
>>> render_argv(template, _example_command())
['/usr/bin/tool', '--remedy', 'reduce_ttl', '--factor', '0.5']
>>> check_template("default", ["/usr/bin/tool", "--factor={param:factor}"])
Traceback (most recent call last):
...
ValueError: executor.commands.default[1]: '--factor={param:factor}' mixes text and a ...
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping

from perfloop.actions.catalog import remedy as catalog_remedy
from perfloop.schemas.messages import ActionCommand

FIELDS = ("action_id", "incident_id", "service", "area", "cause", "remedy", "attempt",
          "device", "dry_run")  # fmt: skip
_PLACEHOLDER = re.compile(r"^\{(?:(" + "|".join(FIELDS) + r")|param:([A-Za-z0-9_]+))\}$")


class CommandError(RuntimeError):
    """The program could not be run, timed out, or exited with a non-zero status."""


def check_template(key: str, template: list[str]) -> None:
    """``ValueError`` naming the item if ``template`` is not a safe argv template."""
    where = f"executor.commands.{key}"
    if not template:
        raise ValueError(f"{where}: empty; the first item must be the program")
    for i, item in enumerate(template):
        braces = "{" in item or "}" in item
        if i == 0 and braces:
            raise ValueError(f"{where}[0]: {item!r}: the program must be fixed text")
        if braces and not _PLACEHOLDER.match(item):
            raise ValueError(
                f"{where}[{i}]: {item!r} mixes text and a placeholder; "
                "a placeholder must be a whole item"
            )


def render_argv(template: list[str], command: ActionCommand) -> list[str]:
    """The argv for ``command``: each placeholder replaced by one validated value."""
    argv = []
    for item in template:
        match = _PLACEHOLDER.match(item)
        if match is None:
            argv.append(item)
        elif match.group(1):
            argv.append(_field(command, match.group(1)))
        else:
            argv.append(_param(command, match.group(2)))
    return argv


def _field(command: ActionCommand, name: str) -> str:
    value = getattr(command, name)
    if value is None:
        raise CommandError(f"{{{name}}}: the command has no {name}")
    return _text(value)


def _param(command: ActionCommand, name: str) -> str:
    if name not in command.params:
        raise CommandError(f"{{param:{name}}}: {command.remedy} has no parameter {name!r}")
    value = command.params[name]
    if isinstance(value, str):
        spec = {p.name: p for p in catalog_remedy(command.area, command.cause, command.remedy)
                .params}.get(name)  # fmt: skip
        if spec is None or spec.kind != "enum" or value not in spec.choices:
            raise CommandError(f"{{param:{name}}}: {value!r} is not an allowed value")
    return _text(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class CommandHandler:
    """Runs ``templates[remedy]`` (or ``templates["default"]``) as a subprocess."""

    name = "command"

    def __init__(self, templates: Mapping[str, list[str]], timeout_s: float = 30.0) -> None:
        for key, template in templates.items():
            check_template(key, template)
        if not templates:
            raise ValueError("executor.commands: empty, but the command handler is used")
        self.templates = {k: list(v) for k, v in templates.items()}
        self.timeout_s = timeout_s

    def apply(self, command: ActionCommand) -> str:
        template = self.templates.get(command.remedy) or self.templates.get("default")
        if template is None:
            raise CommandError(f"no command configured for {command.remedy!r} and no default")
        argv = render_argv(template, command)
        try:
            done = subprocess.run(
                argv, shell=False, timeout=self.timeout_s, capture_output=True,
                stdin=subprocess.DEVNULL, check=False, text=True, errors="replace",
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise CommandError(f"{argv[0]}: timeout after {self.timeout_s:g}s") from None
        except OSError as exc:
            raise CommandError(f"{argv[0]}: cannot run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise CommandError(f"{argv[0]}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
        return f"{argv[0]}: exit 0 {done.stdout.strip()[-200:]}".rstrip()
