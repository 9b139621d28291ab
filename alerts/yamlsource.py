"""YAML with line numbers: plain data plus the line of every key and list item, for error messages.

PyYAML's `safe_load` forgets where things were, and silently keeps the last of two equal keys. A rules
file is edited by hand and checked in CI, so every complaint must name the line it is about, and a
repeated key (two `critical:` in one rule, the second quietly winning) must be an error, not a guess.
So we compose the node tree ourselves and build the data from it, recording as we go:

- `lines[path]`: the 1-based line of the *key* for a mapping entry (where a reader looks for
  `warning:`), of the item for a list element, and 1 for the document itself;
- `text[path]`: the scalar as written (`0042`, `yes`), so a message can quote what the author typed
  rather than what YAML 1.1 turned it into (the integer 34, the boolean True).

Mapping keys are always the key's text: a device id `0042` stays the string "0042".
A path is a tuple of keys and list indexes, e.g. `("rules", 2, "warning", "above")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the YAML itself (syntax, a repeated key), at a 1-based line."""

    line: int
    path: KeyPath
    message: str


@dataclass(slots=True)
class Document:
    """The data of one YAML document, with where each part of it was written."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    text: dict[KeyPath, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest written ancestor (a missing key: its mapping's line)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return 1


def parse(text: str) -> Document:
    """Parse one YAML document (safe tags only). Syntax errors come back as a `Problem`, not raised."""
    try:
        loader = yaml.SafeLoader(text)  # refuses some control characters at once
    except yaml.YAMLError as exc:
        return Document(None, {(): 1}, problems=[Problem(1, (), f"YAML error: {exc}")])
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, {(): 1})
        doc = Document(None, {(): node.start_mark.line + 1})
        doc.data = _build(loader, node, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return Document(None, {(): 1}, problems=[Problem(line, (), f"YAML syntax error: {what}")])
    except yaml.YAMLError as exc:  # not marked: rare (e.g. a bad character in the stream)
        return Document(None, {(): 1}, problems=[Problem(1, (), f"YAML error: {exc}")])
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, doc: Document) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *anchor` merge keys become ordinary pairs
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                doc.problems.append(Problem(key_node.start_mark.line + 1, path, "a key must be a plain string"))
                continue
            key = str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in out:
                first = doc.lines[child]
                doc.problems.append(Problem(line, child, f"duplicate key (first given at line {first})"))
                continue
            doc.lines[child] = line
            out[key] = _build(loader, value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            child = (*path, i)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(loader, item, child, doc))
        return items
    doc.text[path] = str(node.value)
    return loader.construct_object(node, deep=True)
