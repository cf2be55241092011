"""The terms file as text: a strict YAML loader (no tags, no duplicate keys, integers as written, every
node's line kept for messages) and the canonical dumper that `terms show` prints."""

from __future__ import annotations

import re
from typing import Any

import yaml

from smartsla.terms.errors import TermsError
from smartsla.terms.schema import resolve_ref, schema


class _Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars so user text stays text.

    PyYAML follows YAML 1.1, where an unquoted ``0xAbC...`` address becomes an
    int, ``2027-01-01T00:00:00Z`` a datetime, ``on``/``no`` booleans and
    ``010`` an octal 8. Each of those would silently change the terms (and the
    document hash), so only plain decimal ints, decimal floats and
    true/false are recognised.
    """


_DROPPED_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:timestamp",
}


_Loader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] not in _DROPPED_TAGS]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node), 10)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be text, got {key!r}", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _node_marks(node, parts: tuple = (), out: dict | None = None) -> dict:
    """Map each key path to the (line, column) where it is written."""
    if out is None:
        out = {(): (node.start_mark.line + 1, node.start_mark.column + 1)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = parts + (key_node.value,)
                out.setdefault(child, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                _node_marks(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = parts + (i,)
            out.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _node_marks(item, child, out)
    return out


def parse_yaml(text: str, source: str) -> tuple[Any, dict]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise TermsError("", "the file is empty; see docs/terms.md for the keys", source=source)
        doc = loader.construct_document(node)
        return doc, _node_marks(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
            raise TermsError(
                "", f"line {line}, column {column}: {what}", source=source, line=line, column=column
            ) from None
        raise TermsError("", what, source=source) from None
    except yaml.YAMLError as exc:
        raise TermsError("", f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()


class _FlowMap(dict):
    pass


class _FlowList(list):
    pass


class _CanonicalDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # no anchors: every value written out
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)  # list items indented under their key

    def analyze_scalar(self, scalar: str):
        # PyYAML writes these line breaks raw outside double quotes, and reading
        # them back folds them; double quotes escape them.
        analysis = super().analyze_scalar(scalar)
        if any(ch in scalar for ch in "\x85\u2028\u2029"):
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis


# Text that YAML 1.1 readers or this module's loader would read as something
# else than text (a number, a boolean, a time, null) is quoted.
_CanonicalDumper.yaml_implicit_resolvers = {
    ch: list(yaml.SafeDumper.yaml_implicit_resolvers.get(ch, [])) + list(_Loader.yaml_implicit_resolvers.get(ch, []))
    for ch in set(yaml.SafeDumper.yaml_implicit_resolvers) | set(_Loader.yaml_implicit_resolvers)
}


_CanonicalDumper.add_representer(
    _FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True))


_CanonicalDumper.add_representer(
    _FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


_CanonicalDumper.add_representer(
    dict, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=False))


_CanonicalDumper.add_representer(
    list, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=False))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _canonical_shape(value: Any, sch: dict | None, in_list: bool = False) -> Any:
    sch = resolve_ref(sch) if isinstance(sch, dict) else {}
    if isinstance(value, dict):
        known = list(sch.get("properties", {}))
        keys = [k for k in known if k in value] + sorted(k for k in value if k not in known)
        out = {k: _canonical_shape(value[k], sch.get("properties", {}).get(k)) for k in keys}
        if in_list and out and all(_is_scalar(v) for v in out.values()):
            return _FlowMap(out)
        return out
    if isinstance(value, list):
        items = [_canonical_shape(v, sch.get("items"), True) for v in value]
        if items and all(_is_scalar(v) for v in items):
            return _FlowList(items)
        return items
    return value


def canonical_yaml(document: Any) -> str:
    """One deterministic YAML rendering of a (resolved) document.

    Keys in the order of docs/terms.md and the schema (agreement, provider,
    customer, payment, periods, services, compensation, oracles, maintenance,
    measurement; unknown keys after, sorted); lists of plain values and
    mappings of plain values inside lists (tiers, simple services) on one
    line; text that could read as a number, boolean or time quoted. Loading
    it gives the same document, so the same document hash: it is the
    standalone form of terms written with ``extends``.
    """
    shaped = _canonical_shape(document, schema())
    return yaml.dump(shaped, Dumper=_CanonicalDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1_000_000, indent=2)
