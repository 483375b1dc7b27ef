"""The tests pin behaviour through the product's public surface, never through its private helpers.

A name with a leading underscore in bot/ or commands/ is an implementation detail its module may change
at any time; a test that reaches for one breaks on a refactoring that changes no behaviour, and passes
while the behaviour it meant to pin is broken. So no test file under tests/ may

- import a private name from a product module: `from bot.x import _y`, `from commands import _y`;
- read or patch a private attribute through a name bound to a product module (`status_command._known`,
  `bot.core.acks._x`, `lanes.Fanout._pending`), with getattr/setattr/monkeypatch.setattr on the module,
  or through a dotted string target (`monkeypatch.setattr("bot.x._y", ...)`, `mock.patch("bot.x._y")`);
- read a private attribute of a product object (`runner._active`, `self.locker._lock`): an attribute whose
  name the product defines as private, on anything but the test's own `self`/`cls`, unless the test file
  defines that name itself (its own helper classes may use `self._x` as they like).

Private attributes of other libraries (prometheus_client's `_name`) are not the product's, and are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PRODUCT_PACKAGES = ("bot", "commands")
PATCHERS = {"setattr", "getattr", "delattr", "hasattr"}  # builtins, and monkeypatch.setattr / delattr
STRING_PATCHERS = {"setattr", "delattr", "patch", "setitem"}  # monkeypatch.setattr("a.b._c", ...), mock.patch


def private(name: str) -> bool:
    """`_x` (and `__x`, name-mangled) but not a dunder such as `__init__` or `__name__`."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_product(module: str) -> bool:
    return module.split(".", 1)[0] in PRODUCT_PACKAGES


def is_product_module(dotted: str) -> bool:
    """Whether `dotted` names a module or package of the product (by its file, without importing it)."""
    if not is_product(dotted):
        return False
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def dotted_name(node: ast.expr) -> list[str] | None:
    """`a.b.c` -> ["a", "b", "c"]; None for anything that is not a plain chain of names."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


@dataclass(frozen=True)
class Finding:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def product_private_names() -> frozenset[str]:
    """Every private attribute name the product defines on its classes and objects: `self._x = ...`,
    private methods and class attributes (what `obj._x` on a product object can reach)."""
    names: set[str] = set()
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= defined_private_attributes(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(names)


def defined_private_attributes(tree: ast.AST) -> set[str]:
    """Private names a source defines as attributes: assigned on any object, or in a class body."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and private(node.attr):
            names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and private(item.name):
                    names.add(item.name)
                targets = item.targets if isinstance(item, ast.Assign) else \
                    [item.target] if isinstance(item, ast.AnnAssign) else []
                names |= {target.id for target in targets if isinstance(target, ast.Name) and private(target.id)}
    return names


def findings(source: str, product_private: frozenset[str]) -> list[Finding]:
    """What in one test file's source reaches into the product's private names."""
    tree = ast.parse(source)
    modules = product_module_names(tree)
    own = defined_private_attributes(tree)
    found: list[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and is_product(node.module):
            found += [Finding(node.lineno, f"imports private {alias.name} from {node.module}")
                      for alias in node.names if private(alias.name)]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            found += private_attribute(node, modules, own, product_private)
        elif isinstance(node, ast.Call):
            found += private_by_call(node, modules)
    return sorted(set(found), key=lambda finding: finding.line)


def product_module_names(tree: ast.AST) -> set[str]:
    """Names bound to product modules anywhere in the file: `import bot.x` (binds `bot`), `import bot.x as m`,
    `from bot.x import module`."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_product(alias.name):
                    bound.add(alias.asname or alias.name.split(".", 1)[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and is_product(node.module):
            bound |= {alias.asname or alias.name for alias in node.names
                      if is_product_module(f"{node.module}.{alias.name}")}
    return bound


def private_attribute(node: ast.Attribute, modules: set[str], own: set[str],
                      product_private: frozenset[str]) -> list[Finding]:
    chain = dotted_name(node)
    if chain is not None and chain[0] in modules:
        return [Finding(node.lineno, f"reads private {'.'.join(chain)} of a product module")]
    if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
        return []  # the test's own helper classes
    if node.attr in product_private and node.attr not in own:
        shown = ".".join(chain) if chain is not None else f"<expression>.{node.attr}"
        return [Finding(node.lineno, f"reads {shown}, private to the product object it is on")]
    return []


def private_by_call(node: ast.Call, modules: set[str]) -> list[Finding]:
    """getattr(module, "_x"), monkeypatch.setattr(module, "_x", ...), monkeypatch.setattr("bot.x._y", ...)."""
    function = dotted_name(node.func)
    if function is None or not node.args:
        return []
    name = function[-1]
    first = node.args[0]
    if name in PATCHERS and len(node.args) >= 2:
        target, attribute = dotted_name(first), node.args[1]
        if target is not None and target[0] in modules and isinstance(attribute, ast.Constant) \
                and isinstance(attribute.value, str) and private(attribute.value):
            return [Finding(node.lineno, f"{name} of private {'.'.join(target)}.{attribute.value}")]
    if name in STRING_PATCHERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
        parts = first.value.split(".")
        if is_product(first.value) and any(private(part) for part in parts):
            return [Finding(node.lineno, f"{name} of private {first.value!r}")]
    return []


def every_test_source() -> Iterator[Path]:
    yield from sorted(TESTS.rglob("*.py"))


def test_no_test_reaches_into_private_product_names() -> None:
    product_private = product_private_names()
    offenders = [f"{path.relative_to(ROOT)} {finding}" for path in every_test_source()
                 for finding in findings(path.read_text(encoding="utf-8"), product_private)]
    assert not offenders, "tests reaching into private product names:\n" + "\n".join(offenders)


def test_the_check_sees_what_it_forbids() -> None:
    """The check itself on sources written to break each rule (and one that breaks none)."""
    product_private = frozenset({"_active", "_lock"})
    bad = '''
from bot.clients.lanes import _after_acks, gather
from commands import status as status_command
import bot.core.acks
import bot.clients.lanes as lanes

status_command._known_selector("c", "ns", "d")
bot.core.acks._started
lanes.Fanout._pending
getattr(status_command, "_SELECTORS")

def test_x(monkeypatch, runner, world):
    monkeypatch.setattr(lanes, "_lanes", {})
    monkeypatch.setattr("bot.clients.lanes._lanes", {})
    runner._active
    world.locker._lock
'''
    assert [finding.line for finding in findings(bad, product_private)] == [2, 7, 8, 9, 10, 13, 14, 15, 16]

    fine = '''
from prometheus_client import Counter
from bot.clients.lanes import gather
from commands import status as status_command

class Helper:
    def __init__(self):
        self._lock = None
        self._calls = []

    def locked(self, other):
        return self._lock, other._calls, self.helper._lock

value = Counter("x", "y")
value._name
status_command.build_parser()
'''
    assert findings(fine, product_private) == []
