from mersemi.codedigest import ROOT, code_digest, module_closure


def names(*modules):
    return {str(p.relative_to(ROOT)) for p in module_closure(*modules)}


def test_closure_follows_relative_and_function_level_imports():
    faces = names("mersemi.extract.faces")
    assert {
        "extract/faces/__init__.py",
        "extract/faces/frames.py",
        "extract/common.py",
        "store.py",
    } <= faces
    assert "extract/visual/__init__.py" not in faces  # another stage's edit must not rerun faces
    assert "train/cli.py" not in names("mersemi.commands")


def test_digest_changes_when_an_imported_module_changes(tmp_path, monkeypatch):
    before = code_digest("mersemi.commands")
    assert before == code_digest("mersemi.commands")
    import mersemi.codedigest as cd

    pkg = tmp_path / "mersemi"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f(): return 1\n")
    monkeypatch.setattr(cd, "ROOT", pkg)
    first = cd.code_digest("mersemi.a")
    (pkg / "b.py").write_text("def f(): return 2\n")
    assert cd.code_digest("mersemi.a") != first
