"""Reading policy files: YAML with line numbers, validated whole, every problem reported."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from registry.policy_files.models import Document
from registry.policy_files.reference import MatterFile, RegionFile

M = TypeVar("M", bound=BaseModel)

DOCUMENTS_DIR = "documents"
REGIONS_FILE = "regions.yaml"
MATTERS_FILE = "matters.yaml"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file, located as precisely as the file allows."""

    file: str
    line: int | None
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.severity}: {self.field or '(file)'}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The problem as it appears in an API error body."""
        return {
            "file": self.file,
            "line": self.line,
            "loc": self.field,
            "msg": self.message,
            "severity": self.severity,
        }


@dataclass(slots=True)
class PolicySet:
    """Everything the registry loads from its policy directory."""

    regions: RegionFile
    matters: MatterFile
    documents: list[tuple[str, Document]] = field(default_factory=list)
    file_hashes: dict[str, str] = field(default_factory=dict)


class PolicyFilesInvalid(Exception):
    """A set of policy files that cannot be loaded; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# libyaml parses the policy files about ten times faster than the pure-Python parser; its nodes
# carry the same line marks. PyYAML built without libyaml falls back to the Python parser.
_SafeLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Safe YAML that leaves dates as text, so a date like 2023-02-30 is reported, not raised."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _field_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_yaml(text: str, model: type[M], name: str) -> tuple[M | None, list[Problem]]:
    """Validate one file's text against a model; return it or every problem with its line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506  # a safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(name, line, "", f"not valid YAML: {exc}")]
    if not isinstance(data, dict):
        return None, [Problem(name, 1, "", "the file must hold a mapping at its top level")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        # The node tree, with its line marks, is only needed to locate problems: parse again.
        node = yaml.compose(text, Loader=_Loader)
        problems = []
        for error in exc.errors(include_url=False):
            loc = [p for p in error["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
            problems.append(Problem(name, _line_of(node, loc), _field_path(loc), error["msg"]))
        return None, problems


# pydantic names the chosen member of a tagged union in the location; a reader doesn't need it.
_UNION_TAGS = frozenset(
    {
        "fixed",
        "per_unit",
        "percentage",
        "tiered",
        "range",
        "periodic",
        "unspecified",
        "non_cash",
        "function-after[_ordered(), RangeAmount]",
        "function-after[_ascending(), TieredAmount]",
    }
)


def _document_paths(root: Path) -> list[Path]:
    return sorted((root / DOCUMENTS_DIR).glob("**/*.yaml"))


class _Reader:
    """Reads policy files, keeping each one's hash and every problem found."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.file_hashes: dict[str, str] = {}

    def read(self, path: Path, model: type[M]) -> M | None:
        name = path.relative_to(self.root).as_posix()
        if not path.is_file():
            self.problems.append(Problem(name, None, "", "file is missing"))
            return None
        raw = path.read_bytes()
        self.file_hashes[name] = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(name, None, "", f"not UTF-8 text: {exc.reason}"))
            return None
        parsed, found = parse_yaml(text, model, name)
        self.problems.extend(found)
        return parsed


def read_policy_dir(root: Path) -> PolicySet:
    """Load regions, matters and every document file under `root`, or raise with all problems."""
    reader = _Reader(root)
    regions = reader.read(root / REGIONS_FILE, RegionFile)
    matters = reader.read(root / MATTERS_FILE, MatterFile)
    documents: list[tuple[str, Document]] = []
    for path in _document_paths(root):
        document = reader.read(path, Document)
        if document is not None:
            documents.append((path.relative_to(root).as_posix(), document))
    if reader.problems or regions is None or matters is None:
        raise PolicyFilesInvalid(reader.problems)
    return PolicySet(
        regions=regions, matters=matters, documents=documents, file_hashes=reader.file_hashes
    )


def read_reference_files(root: Path) -> tuple[RegionFile, MatterFile]:
    """Only the regions and matters files, or raise with their problems."""
    reader = _Reader(root)
    regions = reader.read(root / REGIONS_FILE, RegionFile)
    matters = reader.read(root / MATTERS_FILE, MatterFile)
    if reader.problems or regions is None or matters is None:
        raise PolicyFilesInvalid(reader.problems)
    return regions, matters


def file_hashes(root: Path) -> dict[str, str]:
    """The hash of every file `read_policy_dir` reads, by name, without parsing any."""
    hashes: dict[str, str] = {}
    for path in [root / REGIONS_FILE, root / MATTERS_FILE, *_document_paths(root)]:
        if path.is_file():
            name = path.relative_to(root).as_posix()
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def tree_digest(hashes: dict[str, str]) -> str:
    """A digest of a policy directory (each file's name and hash) and of the code checking it.

    Equal digests mean the same files, read and checked by the same rules: what was loaded
    once needs neither checking nor loading again.
    """
    digest = hashlib.sha256(_checks_digest())
    for name in sorted(hashes):
        digest.update(f"\0{name}\0{hashes[name]}".encode())
    return digest.hexdigest()


@cache
def _checks_digest() -> bytes:
    """A digest of this package's source: the models and checks a policy file passes."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()
