"""What the train steps add to the stage params contract (tests/test_extract_common.py):
mappings as input, trusted base values, dict and list fields; and each option declared once,
on its field (`mersemi.params.option`), read by the checks, the config load and the docs."""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mersemi.errors import InputError
from mersemi.params import parse_params

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Opts:
    epochs: int = 20
    lr: float = 1e-4
    weights: dict = field(default_factory=lambda: {"A": 0.7})
    classes: list = field(default_factory=lambda: ["sad"])


def test_mapping_and_base_override_defaults():
    assert parse_params(Opts, {"lr": 1}, base={"epochs": 5}) == Opts(epochs=5, lr=1)
    assert parse_params(Opts, '{"epochs": 3}', base={"epochs": 5}).epochs == 3


def test_container_fields_are_type_checked():
    assert parse_params(Opts, {"weights": {"F": 1.0}, "classes": []}).weights == {"F": 1.0}
    with pytest.raises(InputError, match=r"weights=\[1\] has type list, expected dict"):
        parse_params(Opts, '{"weights": [1]}')
    with pytest.raises(InputError, match="classes='sad' has type str, expected list"):
        parse_params(Opts, {"classes": "sad"})


def _params_classes():
    from mersemi.configcheck import Layout
    from mersemi.optiondocs import TABLES

    return [cls for cls, _ in TABLES.values()] + [Layout]


def test_every_numeric_option_is_declared_with_a_range():
    """Each number's bounds are declared on its field (`option(..., range=Range(...))`): a
    new number without one fails here; and every default lies inside its own range."""
    from mersemi.params import Range, numeric_fields

    for cls in _params_classes():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [
            n for n in numeric_fields(cls) if not isinstance(fields[n].metadata.get("range"), Range)
        ]
        assert not missing, f"{cls.__name__}: {missing} need option(..., range=Range(...))"
        undocumented = [f.name for f in fields.values() if not f.metadata.get("help")]
        assert not undocumented, f"{cls.__name__}: {undocumented} need option(..., help=...)"
        parse_params(cls, None)


def test_choices_are_literal_types_and_named_in_the_error():
    from mersemi.extract.faces import Params as Faces
    from mersemi.train.params import CVParams, PseudoParams, VoteParams

    with pytest.raises(
        InputError, match=r"^x: backend must be one of \['opencv', 'openface'\], got 'haar'$"
    ):
        parse_params(Faces, {"backend": "haar"}, "x")
    with pytest.raises(
        InputError, match=r"^x: recipe must be one of \['mertools', 'mersemi'\], got 3$"
    ):
        parse_params(Faces, {"recipe": 3}, "x")
    with pytest.raises(InputError, match=r"oversample_scope must be one of \['dataset', 'fold'\]"):
        parse_params(CVParams, {"oversample_scope": "all"})
    with pytest.raises(InputError, match=r"score must be one of \['prob_vote', 'logit_sum'"):
        parse_params(PseudoParams, {"score": "max"})
    assert parse_params(VoteParams, {"use": "auto"}).use == "auto"


def test_dict_and_list_options_have_a_rule_per_item():
    from mersemi.train.params import CVParams, FinetuneParams, PseudoParams, VoteParams

    p = parse_params(PseudoParams, {"thresholds": {"sad": 1, "happy": 0.5}})
    assert p.thresholds == {"neutral": 0.99, "angry": 0.99, "happy": 0.5, "sad": 1.0,
                            "worried": 0.85, "surprise": 0.85}  # fmt: skip
    assert isinstance(p.thresholds["sad"], float)
    cases = [
        (PseudoParams, {"thresholds": {"joy": 0.5}}, r"thresholds: unknown class\(es\) \['joy'\]"),
        (PseudoParams, {"thresholds": {"sad": True}}, r"thresholds: sad=True must be a number in"),
        (PseudoParams, {"sweep": [0.5, -1]}, r"sweep: -1 must be a number in \[0, 1\]"),
        (VoteParams, {"weights": {"X": 1}}, r"weights: unknown key\(s\) \['X'\]; allowed: \['A', "),
        (VoteParams, {"weights": {"A": -1}}, r"weights: A=-1 must be a finite number >= 0"),
        (VoteParams, {"weights": {"A": 0, "F": 0}}, r"weights: sum=0 must be > 0 and finite"),
        (FinetuneParams, {"weights": {}}, r"weights: sum=0 must be > 0"),
        (CVParams, {"oversample_classes": ["joy"]}, r"oversample_classes: unknown class\(es\)"),
    ]
    for cls, given, match in cases:
        with pytest.raises(InputError, match=match):
            parse_params(cls, given)
    assert PseudoParams().thresholds is not PseudoParams().thresholds  # copied per instance


def test_rules_between_fields_stay_in_check():
    from mersemi.extract.acoustic import Params as Acoustic
    from mersemi.train.params import FinetuneParams, PretrainParams

    with pytest.raises(InputError, match=r"^t: d_model \(128\) must be divisible by heads \(3\)$"):
        parse_params(PretrainParams, {"heads": 3}, "t")
    with pytest.raises(InputError, match=r"^t: need beta_start <= beta_end"):
        parse_params(FinetuneParams, {"beta_start": 0.5, "beta_end": 0.2}, "t")  # both checks run
    with pytest.raises(InputError, match=r"^a: min_chunk_seconds must be in \[0, chunk_seconds\)$"):
        parse_params(Acoustic, {"min_chunk_seconds": 10.0}, "a")


def test_one_bound_changed_in_one_place_shows_everywhere(monkeypatch):
    """The faces `size` bound, changed on its field only, is what the error line, the docs
    table and the config check at load (the schema states none) all say."""
    import types

    import yaml

    from mersemi import optiondocs
    from mersemi.configcheck import check_config, check_schema
    from mersemi.extract.faces import Params as Faces
    from mersemi.params import Range

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["extract"]["faces"] = {**config["extract"]["faces"], "size": 12}
    check_config(config)  # 12 >= 8: fine as shipped
    before = optiondocs.render("faces")
    assert "| `size` | `null` | int >= 8 and finite, or null |" in before
    field = {f.name: f for f in dataclasses.fields(Faces)}["size"]
    monkeypatch.setattr(
        field, "metadata", types.MappingProxyType({**field.metadata, "range": Range(16)})
    )

    with pytest.raises(InputError, match=r"^faces: size=12 must be >= 16 and finite$"):
        parse_params(Faces, {"size": 12}, "faces")
    assert "| `size` | `null` | int >= 16 and finite, or null |" in optiondocs.render("faces")
    docs = (REPO / "docs" / "extraction.md").read_text(encoding="utf-8")
    assert optiondocs.update(docs) != docs  # the docs are now stale (the docs test would fail)
    check_schema(config)  # the schema has no bound of its own ...
    with pytest.raises(InputError, match=r"^extract.faces: size=12 must be >= 16 and finite$"):
        check_config(config)  # ... the load checks the declaration


def test_no_bound_is_stated_twice():
    """Scan src/: no table of bounds by name, no `check()` comparing a single option with a
    constant (that is the field's declared range or choices), no option module stating one
    name's range twice (a redeclared option uses `like`), and no value rule in the schema."""
    import ast
    import inspect
    import textwrap

    src = REPO / "src" / "mersemi"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "RANGES" not in text and "check_ranges" not in text, path
        tree = ast.parse(text)
        ranges = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call):
                call = node.value
                if getattr(call.func, "id", None) == "option" and any(
                    k.arg == "range" for k in call.keywords
                ):
                    ranges.setdefault(node.target.id, []).append(node.lineno)
        twice = {name: lines for name, lines in ranges.items() if len(lines) > 1}
        assert not twice, f"{path}: range stated more than once (use like()): {twice}"

    def single_field_comparisons(cls):
        found = []
        for klass in cls.__mro__:
            check = klass.__dict__.get("check")
            if check is None:
                continue
            tree = ast.parse(textwrap.dedent(inspect.getsource(check)))
            for node in ast.walk(tree):
                if isinstance(node, ast.Compare):
                    names = {
                        n.attr
                        for n in ast.walk(node)
                        if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "self"
                    }
                    if len(names) == 1:
                        found.append(f"{klass.__name__}.check: {ast.unparse(node)}")
        return found

    found = [c for cls in _params_classes() for c in single_field_comparisons(cls)]
    assert not found, f"declare these on the field instead: {found}"

    import yaml

    schema = yaml.safe_load((src / "schemas" / "config.schema.yaml").read_text())
    rules = {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "enum",
        "const",
        "multipleOf",
    }

    def walk(node, path=""):
        if isinstance(node, dict):
            assert not rules & set(node), (
                f"schema {path}: {rules & set(node)} (declare it on the field)"
            )
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(schema)


def test_schema_defaults_of_top_level_options_agree_with_their_declaration():
    import yaml

    from mersemi.configcheck import Layout

    schema = yaml.safe_load(
        (REPO / "src" / "mersemi" / "schemas" / "config.schema.yaml").read_text()
    )
    for f in dataclasses.fields(Layout):
        assert schema["properties"][f.name]["default"] == f.default


def test_docs_tables_are_the_declarations():
    """docs/ hold the rendering of every options table (`python -m mersemi.optiondocs --write`
    rewrites them), and every option of every stage and training step is in one."""
    from mersemi import optiondocs

    shown = []
    for path in optiondocs.DOCS:
        text = path.read_text(encoding="utf-8")
        assert optiondocs.update(text) == text, f"{path}: run python -m mersemi.optiondocs --write"
        shown += optiondocs.names_in(text)
    assert sorted(shown) == sorted(optiondocs.TABLES)  # each table once
    covered = {(c, f.name) for c, _ in optiondocs.TABLES.values() for f in optiondocs.own_fields(c)}
    for cls, _ in optiondocs.TABLES.values():
        for f in dataclasses.fields(cls):
            owner = next(k for k in cls.__mro__ if (k, f.name) in covered)
            assert owner is not None
    assert optiondocs.main([]) == 0
