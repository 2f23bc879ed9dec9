"""YAML that cannot exhaust memory or time: ``yaml.safe_load`` plus limits on aliases and size.

A few hundred bytes of YAML can describe an exponentially large document through nested anchors and
aliases ("billion laughs"): PyYAML builds it cheaply as shared objects, but every later walk over it
(merging, copying, validating) pays the expanded size. :func:`load` counts the nodes the document
would have with every alias expanded, and refuses it (``ValueError``) above :data:`MAX_NODES`, or
when it uses more than :data:`MAX_ALIASES` aliases or an alias refers to itself (a recursive
structure). Configs never need more than a handful of aliases.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIASES = 100
MAX_NODES = 100_000


class YamlLimitError(ValueError):
    """The document is too large once its aliases are expanded, or recursive."""


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that checks the composed node graph before constructing Python objects."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(f"more than {MAX_ALIASES} aliases (*name); write the values out instead")
        return super().compose_node(parent, index)

    def construct_document(self, node):
        _check_expanded_size(node)
        return super().construct_document(node)


def _check_expanded_size(root: yaml.Node) -> None:
    """Raise YamlLimitError if ``root`` expands to more than MAX_NODES nodes or contains a cycle."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise YamlLimitError(f"the document expands to more than {MAX_NODES:,} values (nested aliases)")
            continue
        if key in sizes:
            continue
        if key in active:
            raise YamlLimitError("an alias refers to a node that contains it (a recursive structure)")
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise YamlLimitError("an alias refers to a node that contains it (a recursive structure)")
            if id(child) not in sizes:
                stack.append((child, False))


def load(text: str | bytes) -> Any:
    """``yaml.safe_load(text)`` with the limits above (YamlLimitError, a ValueError, when exceeded)."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
