"""YAML from users, parsed without the traps: a size cap, no aliases, no deep nesting.

``yaml.safe_load`` builds no arbitrary objects, but it still expands aliases: each ``*name``
repeats its anchored node, so a few hundred bytes of nested aliases become a config of
hundreds of megabytes once dumped or walked (the "billion laughs"). Configs never need them,
so ``load`` refuses them, like texts over ``MAX_BYTES`` and nesting deeper than the parser's
stack, each with a one-line ``YamlError``; ``dump`` never writes them.

>>> load("trainer: {max_steps: 4}")
{'trainer': {'max_steps': 4}}
>>> try:
...     load("a: &x [1]\\nb: *x")
... except YamlError as exc:
...     print(exc)
YAML aliases (*name) are not accepted: write the value out (line 2, column 4)
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 256 * 1024


class YamlError(ValueError):
    """YAML that is not accepted; the message is one line for the user."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise YamlError(
                "YAML aliases (*name) are not accepted: write the value out "
                f"(line {mark.line + 1}, column {mark.column + 1})"
            )
        return super().compose_node(parent, index)


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a value used twice is written out twice, so `load` reads it back


def dump(data: Any) -> str:
    """YAML text of ``data`` that ``load`` accepts: block style, keys in order, no aliases."""
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100)


def load(text: str, max_bytes: int = MAX_BYTES) -> Any:
    """The data of a YAML text; raises ``YamlError`` for anything refused or malformed."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise YamlError(f"the YAML is {size} bytes; at most {max_bytes} are accepted")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise YamlError("the YAML is nested too deeply") from None
