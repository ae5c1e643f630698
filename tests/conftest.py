import pytest
import torch

# fixtures shared by several test modules (tests/ is on sys.path: `helpers` is a package)
pytest_plugins = ["helpers.train_store"]

torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """The SLURM tests last: once they stop their cluster, SLURM's client tools stay installed
    and snakemake's slurm plugin waits ~9 s for `scontrol show config` at every start."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)


@pytest.fixture
def video_tree(tmp_path):
    """A minimal MER2024-style input tree: empty files are enough for the manifest."""

    def make(labeled=("a", "b"), unlabeled=("u1", "u2"), labels=None, ext=".mp4"):
        (tmp_path / "labeled").mkdir(exist_ok=True)
        (tmp_path / "unlabeled").mkdir(exist_ok=True)
        for n in labeled:
            (tmp_path / "labeled" / f"{n}{ext}").touch()
        for n in unlabeled:
            (tmp_path / "unlabeled" / f"{n}{ext}").touch()
        rows = labels if labels is not None else [(n, "happy") for n in labeled]
        (tmp_path / "labels.csv").write_text(
            "name,discrete\n" + "".join(f"{n},{lab}\n" for n, lab in rows), encoding="utf-8"
        )
        return tmp_path

    return make
