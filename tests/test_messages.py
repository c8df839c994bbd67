"""The words of errors are written once, in ``igcore._messages``.

- Every template there is a str with named fields only, and something raises it.
- No user-facing sentence (a string literal of four words or more) is written in two places of the
  Python sources: a sentence that two places raise is a template of ``_messages``.
- The same check over the Cython sources, enabled once Cython takes its words from the module.
- The feed kernels of the reference refuse non-canonical sources with the module's words.
"""

from __future__ import annotations

import ast
import re
import string
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from igcore import _messages
from igcore._reference import timeline as reference_timeline

from .conftest import REQUIRED

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "igcore"
CYTHON = ROOT / "cython"
MESSAGES_FILE = PACKAGE / "_messages.py"
SMALLEST_SENTENCE = 4  # words

TEMPLATES = {
    name: value for name, value in vars(_messages).items() if name.isupper() and not name.startswith("_")
}


def _fields(template: str) -> list:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _normal_template(template: str) -> str:
    """A template with each field written ``{}``, as f-strings are normalised below."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is not None:
            parts.append("{}")
    return "".join(parts).replace("{{", "{").replace("}}", "}")


def _is_sentence(text: str) -> bool:
    return sum(1 for word in text.split() if re.search("[A-Za-z]", word)) >= SMALLEST_SENTENCE


# -- the templates ------------------------------------------------------------------------------------


def test_the_module_holds_templates():
    assert len(TEMPLATES) > 50
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in TEMPLATES)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_is_a_str_with_named_fields(name):
    template = TEMPLATES[name]
    assert type(template) is str and template.strip() == template and template
    for field in _fields(template):
        assert field.isidentifier(), f"{name}: field {field!r} is not a name ({template!r})"


def test_no_two_templates_say_the_same():
    by_text = defaultdict(list)
    for name, template in TEMPLATES.items():
        by_text[_normal_template(template)].append(name)
    assert not [names for names in by_text.values() if len(names) > 1]


def _sources_using_templates():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != MESSAGES_FILE:
            yield path, re.compile(r"\b_messages\.(\w+)\b")
    for pattern in ("*.pyx", "*.pxi", "*.pxd"):
        for path in sorted(CYTHON.glob(pattern)):
            yield path, re.compile(r"\b([A-Z][A-Z0-9_]+)\b")


def test_every_template_is_used():
    used = set(_rust_templates())
    for path, pattern in _sources_using_templates():
        used.update(pattern.findall(path.read_text()))
    unused = sorted(set(TEMPLATES) - used)
    assert not unused, f"templates that nothing raises: {unused}"


def test_every_use_names_a_template():
    unknown = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == MESSAGES_FILE:
            continue
        for name in re.findall(r"\b_messages\.(\w+)\b", path.read_text()):
            if name not in TEMPLATES:
                unknown.append(f"{path.relative_to(ROOT)}: _messages.{name}")
    assert not unknown


# -- Rust's words ---------------------------------------------------------------------------------------


def _template_name(variant: str) -> str:
    """The template of a Rust error variant: its name in UPPER_SNAKE case, each capital starting a word
    (``NotFeedOrder`` -> ``NOT_FEED_ORDER``, ``EdgeListOutsideInt64`` -> ``EDGE_LIST_OUTSIDE_INT64``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", variant).upper()


def _rust_examples() -> list:
    try:
        from igcore import _rust
    except ImportError:
        return []
    return list(_rust._error_examples())


def _rust_templates() -> list:
    return [_template_name(variant) for variant, *_ in _rust_examples()]


def test_the_template_names_of_rust_variants():
    assert _template_name("NotFeedOrder") == "NOT_FEED_ORDER"
    assert _template_name("NotATimelineNan") == "NOT_A_TIMELINE_NAN"
    assert _template_name("IntTooLargeForCLong") == "INT_TOO_LARGE_FOR_C_LONG"
    assert _template_name("EdgeListOutsideInt64") == "EDGE_LIST_OUTSIDE_INT64"


def test_rust_writes_the_words_of_the_module():
    """Every error the Rust backend can raise (one example of each, facts filled in) reads as the
    template of the same name in ``_messages`` formatted with the same facts."""
    examples = _rust_examples()
    if not examples:
        if "rust" in REQUIRED:
            pytest.fail("the Rust backend is not built (required by IGCORE_REQUIRE_BACKENDS)")
        pytest.skip("the Rust backend is not built")
    differ = []
    for variant, exception, message, facts in examples:
        if exception == "KeyError":  # its message is the unknown id itself, no words
            continue
        name = _template_name(variant)
        if name not in TEMPLATES:
            differ.append(f"{variant}: no template {name} for {message!r}")
        elif TEMPLATES[name].format(**facts) != message:
            differ.append(
                f"{variant}: Rust says {message!r}, {name} says {TEMPLATES[name].format(**facts)!r}"
            )
    assert not differ, "\n".join(differ)
    assert len(examples) > 80


# -- each sentence written once -----------------------------------------------------------------------


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _python_literals(path: Path):
    """``(line, text)`` of each string literal but docstrings; f-string fields written ``{}``."""
    tree = ast.parse(path.read_text())
    inside = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for part in ast.walk(node):
                if part is not node:
                    inside.add(id(part))
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text


def _python_places() -> dict:
    """Each sentence of the Python sources (templates of _messages included) -> where it is written."""
    places = defaultdict(list)
    for name, template in TEMPLATES.items():
        places[_normal_template(template)].append(f"_messages.{name}")
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == MESSAGES_FILE or "bench" in path.relative_to(PACKAGE).parts:
            continue
        for line, text in _python_literals(path):
            if _is_sentence(text):
                places[text].append(f"{path.relative_to(ROOT)}:{line}")
    return places


_RAISE = re.compile(r"\braise\s+[\w.]+\s*\(")
_LITERAL = re.compile(r"""([rRbBfFuU]{0,2})("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")


def _raise_arguments(source: str):
    """``(offset, text)`` of the parenthesised arguments of each ``raise X(...)``."""
    for match in _RAISE.finditer(source):
        depth, position = 1, match.end()
        while depth and position < len(source):
            char = source[position]
            if char in "\"'":
                literal = _LITERAL.match(source, position)
                position = literal.end() if literal else position + 1
                continue
            depth += {"(": 1, ")": -1}.get(char, 0)
            position += 1
        yield match.start(), source[match.end() : position - 1]


def _cython_literals(path: Path):
    """``(line, text)`` of the string literals inside ``raise X(...)``; adjacent literals joined, as
    Python joins them, f-string fields written ``{}``."""
    source = path.read_text()
    for offset, arguments in _raise_arguments(source):
        line = source.count("\n", 0, offset) + 1
        pieces, end = [], None
        for literal in _LITERAL.finditer(arguments):
            if end is not None and arguments[end : literal.start()].strip():
                yield line, "".join(pieces)
                pieces = []
            prefix, body = literal.group(1).lower(), literal.group(2)[1:-1]
            if "f" in prefix:
                body = re.sub(r"\{[^{}]*\}", "{}", body)
            pieces.append(body)
            end = literal.end()
        if pieces:
            yield line, "".join(pieces)


def _duplicates(places: dict) -> list:
    return [f"{text!r}: {', '.join(where)}" for text, where in sorted(places.items()) if len(where) > 1]


def test_no_sentence_is_written_twice_in_the_python_sources():
    duplicates = _duplicates(_python_places())
    assert not duplicates, "sentences written in more than one place:\n" + "\n".join(duplicates)


@pytest.mark.skip(reason="Cython adopts the messages module in a following change")
def test_no_sentence_is_written_twice_with_the_cython_sources():
    places = _python_places()
    for pattern in ("*.pyx", "*.pxi"):
        for path in sorted(CYTHON.glob(pattern)):
            for line, text in _cython_literals(path):
                if _is_sentence(text):
                    places[text].append(f"{path.relative_to(ROOT)}:{line}")
    duplicates = _duplicates(places)
    assert not duplicates, "sentences written in more than one place:\n" + "\n".join(duplicates)


def test_the_cython_scan_finds_sentences():
    """The Cython scan above reads what it should (so that enabling it means something)."""
    found = [text for path in sorted(CYTHON.glob("*.pyx")) for _, text in _cython_literals(path)]
    assert "{} changed size during iteration" in found
    assert (
        "sources[{}] is not in feed order: entry {} ranks above entry {} "
        "(feed order is descending by (score, post_id))"
    ) in found


# -- the words the feed kernels raise -------------------------------------------------------------------


def _arrays(scores):
    n = len(scores)
    return np.asarray(scores), np.arange(n, 0, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)


def test_the_reference_refuses_a_source_not_in_canonical_form():
    canonical = _arrays(np.array([3, 2], dtype=np.int64))
    for bad in (list(canonical), canonical[:2], (canonical[0].astype(np.int32), *canonical[1:])):
        with pytest.raises(TypeError) as caught:
            reference_timeline.merge_page([canonical, bad], 10, None, None, None)
        assert str(caught.value) == (
            "sources[1] is not in canonical form: a Timeline of this backend, or three C-contiguous "
            "arrays of one length (int64 or float64 scores, int64 post and author ids)"
        )


def test_the_reference_refuses_sources_of_two_score_kinds():
    ints = _arrays(np.array([3, 2], dtype=np.int64))
    floats = _arrays(np.array([3.0, 2.0]))
    with pytest.raises(TypeError) as caught:
        reference_timeline.merge_page([floats, floats, ints], 10, None, None, None)
    assert str(caught.value) == (
        "sources mix int64 and float64 scores (sources[2] has int64, sources[0] has float64); one feed "
        "has one score kind: convert explicitly, e.g. with scores.astype(np.float64)"
    )


def test_the_reference_refuses_a_cursor_of_the_other_score_kind():
    floats = _arrays(np.array([3.0, 2.0]))
    with pytest.raises(ValueError) as caught:
        reference_timeline.merge_page([floats], 10, (False, 3, 1), None, None)
    assert str(caught.value) == (
        "the cursor belongs to a feed with int64 scores; these sources have float64 scores"
    )
