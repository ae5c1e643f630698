"""The OpenFace binary for the tests (built once by `mersemi.fixtures.openface`)."""

from pathlib import Path

import pytest

from mersemi.fixtures.openface import build, fixture_dir


def built_or_skip() -> Path:
    """The built FeatureExtraction, or a pytest skip when there is no fixture."""
    fixture = fixture_dir()
    if fixture is None:
        pytest.skip("no OpenFace fixture (shared/fixtures/openface; MERSEMI_OPENFACE_FIXTURE)")
    return build(fixture)
