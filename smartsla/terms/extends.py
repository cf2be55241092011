"""Terms in levels: a file that `extends:` another, to any depth. Mappings merge, services merge by id,
`remove: true` drops a service; cycles and missing parents are named; every value keeps the file it came from."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from smartsla.terms.errors import TermsError, format_path
from smartsla.terms.model import canonical_json
from smartsla.terms.schema import describe
from smartsla.terms.yaml import canonical_yaml, parse_yaml


@dataclass(frozen=True)
class ResolvedDocument:
    """A terms document with its ``extends`` chain applied, not yet validated.

    ``data`` is the plain document (dicts, lists, text, numbers; ``extends``,
    ``remove:`` entries and ``null`` removals consumed), the one the document
    hash covers. ``sources`` are the files it came from: the base of the chain
    first, the file that was loaded last (just that file without extends).
    ``load_terms`` validates it; ``canonical_yaml()`` renders it as one
    standalone file with the same document hash.
    """

    data: Any
    sources: tuple[str, ...]
    _origins: Origins | None = field(default=None, repr=False, compare=False)
    _marks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The file (or name) that was loaded: the last of ``sources``."""
        return self.sources[-1]

    def canonical_json(self) -> bytes:
        return canonical_json(self.data)

    def canonical_yaml(self) -> str:
        return canonical_yaml(self.data)


def resolve_terms_document(
    path_or_text: str | os.PathLike | dict,
    *,
    source_name: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> ResolvedDocument:
    """Read a terms file (or text, or a dict, as :func:`load_terms`) and apply its ``extends`` chain.

    Raises :class:`TermsError` for unreadable or malformed files, a missing
    parent (key path ``extends``), a loop in the chain (the files named) and
    merge problems (a service without an id, a duplicate id, a ``remove:`` of
    a service no parent has, a ``null`` removing a key no parent sets). The
    result is not validated: call :func:`load_terms` for that.
    """
    doc, marks, label, folder, path = _read_document(path_or_text, source_name, base_dir)
    return _Resolver().resolve(doc, marks, label, folder, path)


def _read_document(path_or_text, source_name, base_dir) -> tuple[Any, dict, str, str, str | None]:
    """(document, key-path marks, source label, folder its ``extends`` is relative to, file path or None)."""
    folder = os.fspath(base_dir) if base_dir is not None else ""
    if isinstance(path_or_text, dict):
        return copy.deepcopy(path_or_text), {}, source_name or "<terms>", folder, None
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and "\n" not in path_or_text and not path_or_text.lstrip().startswith("{")
    ):
        path = os.fspath(path_or_text)
        source = source_name or path
        text = _read_file(path, source)
        doc, marks = parse_yaml(text, source)
        return doc, marks, source, os.path.dirname(path) if base_dir is None else folder, path
    if isinstance(path_or_text, str):
        source = source_name or "<terms>"
        doc, marks = parse_yaml(path_or_text, source)
        return doc, marks, source, folder, None
    raise TypeError(f"load_terms takes a path, YAML text or a dict, not {type(path_or_text).__name__}")


def _read_file(path: str, source: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise TermsError("", f"cannot read the terms file: {exc.strerror or exc}", source=source) from None
    except UnicodeDecodeError:
        raise TermsError("", "the terms file is not UTF-8 text", source=source) from None


EXTENDS = "extends"
REMOVE = "remove"
_MERGED = None  # a place written by several files has no single origin


class _Node:
    """Where each part of a document was written: ``origin`` is (file, key path in that file)."""

    __slots__ = ("items", "origin")

    def __init__(self, origin: tuple[str, tuple] | None, items: dict | list | None = None):
        self.origin = origin
        self.items = items

    @classmethod
    def of(cls, value: Any, file: str, path: tuple = ()) -> _Node:
        if isinstance(value, dict):
            return cls((file, path), {k: cls.of(v, file, path + (k,)) for k, v in value.items()})
        if isinstance(value, list):
            return cls((file, path), [cls.of(v, file, path + (i,)) for i, v in enumerate(value)])
        return cls((file, path))


@dataclass
class Origins:
    """Resolved key path -> where it was written; the marks of every file in the chain."""

    where: dict            # resolved path -> (file, path in file) | None (merged)
    marks: dict            # file -> {path in file: (line, column)}

    def locate(self, parts: tuple) -> tuple[str | None, tuple | None]:
        for k in range(len(parts), -1, -1):
            if parts[:k] in self.where:
                origin = self.where[parts[:k]]
                if origin is _MERGED:
                    return None, None
                file, fpath = origin
                return file, tuple(fpath) + tuple(parts[k:])
        return None, None

    def order_marks(self, sources: tuple[str, ...]) -> dict:
        """Resolved path -> (file rank, line, column): reports the first problem of the base file first."""
        rank = {s: i for i, s in enumerate(sources)}
        out = {}
        for parts, origin in self.where.items():
            if origin is _MERGED:
                continue
            file, fpath = origin
            line_col = self.marks.get(file, {}).get(tuple(fpath))
            if line_col:
                out[parts] = (rank.get(file, len(sources)),) + tuple(line_col)
        return out


@dataclass
class _Layer:
    label: str
    doc: dict
    marks: dict
    folder: str


class _Resolver:
    def resolve(self, doc: Any, marks: dict, label: str, folder: str, path: str | None) -> ResolvedDocument:
        if not isinstance(doc, dict) or EXTENDS not in doc:
            return ResolvedDocument(doc, (label,), None, marks)
        self.marks_by_file: dict[str, dict] = {label: marks}
        layers = self.chain(_Layer(label, doc, marks, folder), path)   # the loaded file first
        base = layers[-1]
        self.check_services(base)
        for service_path, entry in self.entries(base):
            if isinstance(entry, dict) and REMOVE in entry:
                raise self.file_error(
                    base.label, service_path + (REMOVE,),
                    "only removes a service inherited through extends, and this file extends nothing; "
                    "delete the service instead",
                )
        value: Any = base.doc
        node = _Node.of(value, base.label)
        for layer in reversed(layers[:-1]):
            self.check_services(layer)
            self.parent_labels = ", ".join(x.label for x in layers[layers.index(layer) + 1:])
            self.layer = layer
            value, node = self.merge(value, node, layer.doc, _Node.of(layer.doc, layer.label), ())
        where: dict = {}
        self.flatten(value, node, (), where)
        origins = Origins(where, self.marks_by_file)
        sources = tuple(x.label for x in reversed(layers))
        return ResolvedDocument(copy.deepcopy(value), sources, origins, origins.order_marks(sources))

    # -- the chain

    def chain(self, top: _Layer, path: str | None) -> list[_Layer]:
        layers = [top]
        seen: dict[str, int] = {}
        if path is not None:
            seen[os.path.realpath(path)] = 0
        layer = top
        while EXTENDS in layer.doc:
            ref = layer.doc.pop(EXTENDS)
            if not isinstance(ref, str) or not ref.strip():
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"expected the path of the terms file this one extends, such as \"corporate.yaml\" "
                    f"(relative to this file's folder), got {describe(ref)}",
                )
            label = os.path.normpath(os.path.join(layer.folder, ref))
            real = os.path.realpath(label)
            if real in seen:
                loop = [x.label for x in layers[seen[real]:]] + [label]
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"the extends chain loops: {' -> '.join(loop)}; a terms file cannot extend itself "
                    "or a file that extends it, so remove one of these extends",
                )
            try:
                with open(label, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                via = f" (reached through {' -> '.join(x.label for x in layers)})" if len(layers) > 1 else ""
                raise self.file_error(
                    layer.label, (EXTENDS,),
                    f"cannot read {describe(ref)} ({label}): {exc.strerror or exc}{via}; the path is relative "
                    f"to the folder of the file that says extends",
                ) from None
            except UnicodeDecodeError:
                raise self.file_error(layer.label, (EXTENDS,), f"{label} is not UTF-8 text") from None
            doc, marks = parse_yaml(text, label)
            if not isinstance(doc, dict):
                raise TermsError("", f"the top level must be a mapping of keys, got {describe(doc)}", source=label)
            self.marks_by_file[label] = marks
            seen[real] = len(layers)
            layer = _Layer(label, doc, marks, os.path.dirname(label))
            layers.append(layer)
        return layers

    # -- errors

    def file_error(self, file: str, parts: tuple, message: str) -> TermsError:
        marks = self.marks_by_file.get(file, {})
        at = tuple(parts)
        while at and at not in marks:  # a missing key: the line of the mapping that lacks it
            at = at[:-1]
        line_col = marks.get(at)
        line, column = line_col if line_col else (None, None)
        return TermsError(parts, message, source=file, line=line, column=column)

    def node_error(self, node: _Node, extra: tuple, message: str) -> TermsError:
        file, parts = node.origin
        return self.file_error(file, tuple(parts) + extra, message)

    # -- services

    @staticmethod
    def entries(layer: _Layer):
        services = layer.doc.get("services")
        if isinstance(services, list):
            for i, entry in enumerate(services):
                yield ("services", i), entry

    def check_services(self, layer: _Layer) -> None:
        """Services merge by id, so every file of a chain needs ids, unique in the file."""
        seen: dict[str, int] = {}
        for parts, entry in self.entries(layer):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                what = "id" if isinstance(entry, dict) else ""
                raise self.file_error(
                    layer.label, parts + ((what,) if what else ()),
                    "every service needs an id such as \"api\" when terms use extends: services merge by id",
                )
            sid = entry["id"]
            if sid in seen:
                raise self.file_error(
                    layer.label, parts + ("id",),
                    f"{describe(sid)} is already used by services[{seen[sid]}] of this file; ids must be unique "
                    "(a file that extends another changes an inherited service by writing its id once)",
                )
            seen[sid] = parts[1]

    def merge_services(self, parent: list, pnode: _Node, child: list, cnode: _Node) -> tuple[list, _Node]:
        inherited = {entry["id"]: i for i, entry in enumerate(parent)}
        removed: set[str] = set()
        merged: dict[str, tuple] = {}
        added: list[tuple] = []
        for j, entry in enumerate(child):
            sid, node = entry["id"], cnode.items[j]
            if REMOVE in entry:
                if entry[REMOVE] is not True:
                    raise self.node_error(
                        node, (REMOVE,),
                        f"{describe(entry[REMOVE])} is not allowed; write remove: true to drop the inherited "
                        "service, or delete this key",
                    )
                extra = [k for k in entry if k not in ("id", REMOVE)]
                if extra:
                    raise self.node_error(
                        node, (extra[0],),
                        "a service with remove: true takes only its id; delete this key, or the remove: true",
                    )
                if sid not in inherited:
                    have = ", ".join(inherited) or "none"
                    raise self.node_error(
                        node, ("id",),
                        f"remove: true, but no parent file has a service {describe(sid)} "
                        f"(inherited services: {have}); fix the id or delete this entry",
                    )
                removed.add(sid)
            elif sid in inherited:
                i = inherited[sid]
                merged[sid] = self.merge(parent[i], pnode.items[i], entry, node, ("services", i))
            else:
                added.append((entry, node))
        values, nodes = [], []
        for i, entry in enumerate(parent):
            if entry["id"] in removed:
                continue
            value, node = merged.get(entry["id"], (entry, pnode.items[i]))
            values.append(value)
            nodes.append(node)
        for value, node in added:
            values.append(value)
            nodes.append(node)
        return values, _Node(_MERGED, nodes)

    # -- the merge

    def merge(self, parent: Any, pnode: _Node, child: Any, cnode: _Node, path: tuple) -> tuple[Any, _Node]:
        """``child`` over ``parent``: mappings key by key (``null`` removes a key), the top-level
        ``services`` by id, everything else replaced by the child's value."""
        if isinstance(parent, dict) and isinstance(child, dict):
            values: dict = {}
            nodes: dict = {}
            for key, value in parent.items():
                if key not in child:
                    values[key], nodes[key] = value, pnode.items[key]
                elif child[key] is not None:
                    values[key], nodes[key] = self.merge(value, pnode.items[key], child[key], cnode.items[key],
                                                         path + (key,))
            for key, value in child.items():
                if key in parent:
                    continue
                if value is None:
                    raise self.node_error(
                        cnode.items[key], (),
                        f"null removes an inherited key, but no parent file ({self.parent_labels}) sets "
                        f"{format_path(path + (key,))}; delete this line",
                    )
                values[key], nodes[key] = value, cnode.items[key]
            return values, _Node(_MERGED, nodes)
        if path == ("services",) and isinstance(parent, list) and isinstance(child, list):
            return self.merge_services(parent, pnode, child, cnode)
        return child, cnode

    def flatten(self, value: Any, node: _Node, parts: tuple, where: dict) -> None:
        where[parts] = node.origin
        if isinstance(value, dict) and isinstance(node.items, dict):
            for key, item in value.items():
                self.flatten(item, node.items[key], parts + (key,), where)
        elif isinstance(value, list) and isinstance(node.items, list):
            for i, item in enumerate(value):
                self.flatten(item, node.items[i], parts + (i,), where)
