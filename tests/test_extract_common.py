import dataclasses

import numpy as np
import pytest

from mersemi.cli import main
from mersemi.device import autocast_dtype, select_device
from mersemi.errors import InputError
from mersemi.extract.common import (
    ClipFailure,
    MeanPool,
    Outcome,
    SpanningBatcher,
    StageParams,
    meta_params,
    prefetch,
    read_shard,
    reasons_path,
    require_path,
    write_feature_shard,
)
from mersemi.params import AT_LEAST_1, option, parse_params
from mersemi.store import FeatureMeta, read_features


@dataclasses.dataclass
class _P(StageParams):
    size: int = option(3, range=AT_LEAST_1, help="a declared range")
    scale: float = 1.0  # a plain field: any finite number
    path: str | None = None
    batch_size: int = 4

    def check(self):  # a rule between fields
        if self.batch_size > 100 * self.size:
            raise InputError("batch_size must be at most 100 x size")


def test_params_defaults_and_values():
    assert parse_params(_P, None) == _P()
    assert parse_params(_P, "") == _P()
    p = parse_params(_P, '{"size": 5, "scale": 2, "path": "x", "device": "cpu"}')
    assert (p.size, p.scale, p.path, p.device) == (5, 2, "x", "cpu")
    assert "device" not in meta_params(p) and "batch_size" not in meta_params(p)
    assert meta_params(p)["size"] == 5


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"sizee": 5, "zz": 1}', r"unknown key\(s\) \['sizee', 'zz'\]"),
        ('{"size": "5"}', "size='5' has type str"),
        ('{"size": true}', "size=True has type bool"),
        ("[1, 2]", "expected a JSON object"),
        ("{size: 1}", "not valid JSON"),
        ('{"size": 0}', "size=0 must be >= 1"),  # the declared range, before check()
        ('{"batch_size": 301}', r"^--params: batch_size must be at most 100 x size$"),
        ('{"scale": NaN}', "scale=nan must be finite"),
    ],
)
def test_params_errors(text, match):
    with pytest.raises(InputError, match=match):
        parse_params(_P, text)


def test_prefetch_order_isolation_and_bugs():
    def fn(x):
        if x == 3:
            raise ClipFailure("odd", "three")
        return x * 10

    for workers in (0, 2):
        got = list(prefetch(fn, range(6), workers=workers, ahead=2))
        assert [g[0] for g in got] == list(range(6))
        assert [g[1] for g in got] == [0, 10, 20, None, 40, 50]
        assert got[3][2].reason == "odd"

    def bug(x):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        list(prefetch(bug, range(3), workers=2))


def test_spanning_batches_and_mean():
    b = SpanningBatcher(3)
    pool = MeanPool(3, 2)
    units = {0: [np.array([1.0, 1.0])] * 2, 1: [], 2: [np.array([0.0, 2.0]), np.array([2.0, 4.0])]}
    batches = []
    for owner, us in units.items():
        batches += list(b.add(owner, us))
    batches += list(b.flush())
    assert [len(u) for _, u in batches] == [3, 1]
    for owners, us in batches:
        pool.add(owners, np.stack(us))
    np.testing.assert_allclose(pool.mean(), [[1, 1], [0, 0], [1, 3]])
    with pytest.raises(InputError):
        SpanningBatcher(0)


def test_feature_shard_zeroes_invalid_rows_and_writes_reasons(tmp_path):
    out = tmp_path / "visual" / "shard-0000.h5"
    oc = Outcome(["a", "b", "ç"])
    oc.fail(1, "no_face", "nothing")
    meta = FeatureMeta("visual", "m", "l", "mean", 2, {"k": 1})
    write_feature_shard(out, meta, oc, np.ones((3, 2)), "visual")
    fs = read_features(out)
    assert list(fs.valid) == [True, False, True]
    np.testing.assert_array_equal(fs.features[1], 0)
    assert reasons_path(out) == tmp_path / "visual" / "shard-0000.reasons.csv"
    text = reasons_path(out).read_text(encoding="utf-8").splitlines()
    assert text[0] == "name,valid,reason,detail" and text[2] == "b,False,no_face,nothing"
    assert oc.counts() == {"no_face": 1}


def test_device_and_paths(tmp_path):
    dev = select_device("cpu")
    assert dev.type == "cpu" and autocast_dtype(dev, "auto") is None
    with pytest.raises(InputError, match="precision"):
        autocast_dtype(dev, "fp8")
    with pytest.raises(InputError, match="params key 'checkpoint'"):
        require_path(None, "checkpoint", "visual")
    with pytest.raises(InputError, match="does not exist"):
        require_path(str(tmp_path / "nope"), "checkpoint", "visual")


def test_read_shard(tmp_path):
    (tmp_path / "s.csv").write_text(
        "name,path,split,label,shard\n名字,/x/名字.mp4,train,happy,0\n", encoding="utf-8"
    )
    (clip,) = read_shard(tmp_path / "s.csv")
    assert clip.name == "名字" and clip.path.name == "名字.mp4"


def test_cli_rejects_unknown_params(tmp_path, capsys):
    rc = main(["extract", "audio", "--shard", "x.csv", "--out", "y.csv", "--params", '{"rate":1}'])
    assert rc == 2
    assert "unknown key(s) ['rate']" in capsys.readouterr().err


def test_recipe_reaches_exactly_the_stages_it_changes():
    """extract.recipe goes into the faces, visual, acoustic and text params (a stage's own key
    wins), not into audio or asr, so switching it reruns only those four."""
    from mersemi.extract.common import RECIPE_STAGES, stage_section

    extract = {"recipe": "mersemi", "faces": {"size": 96}, "text": {"recipe": "mertools"},
               "audio": {}, "asr": {}, "visual": {}, "acoustic": {}}  # fmt: skip
    got = {s: stage_section(extract, s).get("recipe") for s in extract if s != "recipe"}
    assert got == {"faces": "mersemi", "text": "mertools", "audio": None, "asr": None,
                   "visual": "mersemi", "acoustic": "mersemi"}  # fmt: skip
    assert set(RECIPE_STAGES) == {"faces", "visual", "acoustic", "text"}
    assert stage_section({"faces": {}}, "faces") == {"recipe": "mertools"}  # the default


def test_unknown_recipe_is_a_config_error():
    from mersemi.configcheck import check_config
    from mersemi.extract.acoustic import Params

    with pytest.raises(InputError, match="extract.recipe must be one of"):
        check_config({"extract": {"recipe": "mer2024"}})
    with pytest.raises(InputError, match="recipe must be one of"):
        parse_params(Params, {"recipe": "MERTools"})


def test_departures_from_mertools_are_logged_and_returned(caplog):
    from mersemi.extract.common import departures
    from mersemi.extract.faces import MERTOOLS
    from mersemi.extract.faces import Params as FacesParams

    with caplog.at_level("WARNING"):
        got = departures("faces", FacesParams(max_frames=8, size=112), MERTOOLS)
    assert got == {"backend": "opencv", "max_frames": 8}  # size 112 is MERTools'
    assert "depart from MERTools" in caplog.text
    assert departures("faces", FacesParams(recipe="mersemi", max_frames=8), MERTOOLS) == {}


def test_the_cli_imports_no_model_library():
    """The stage specs build the parser without torch, cv2, open_clip or transformers (a light
    `mersemi extract --help`; the implementation modules import them when a stage runs)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import mersemi

    src = str(Path(mersemi.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys\n"
        "from mersemi.cli import main\n"
        "try:\n    main(['extract', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'cv2', 'open_clip', 'transformers', 'kaldi_native_fbank'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
