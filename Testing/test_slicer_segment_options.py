"""The panel's text choices turned into segmentation arguments."""
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.panels.segment_options import model_choice, parse_folds, parse_mirroring


@pytest.mark.parametrize("text, folds", [("", None), ("  ", None), ("0", [0]), ("0, 2", [0, 2]),
                                         ("1 3", [1, 3]), ("all", ["all"])])
def test_folds(text, folds):
    assert parse_folds(text) == folds


def test_bad_fold_names_the_fix():
    with pytest.raises(UserError, match="fold 'x1' is not a fold number; give numbers such as 0, 1, 2, or all"):
        parse_folds("0,x1")


def test_mirroring():
    assert [parse_mirroring(t) for t in ("auto", "On", "off")] == [None, True, False]
    with pytest.raises(UserError, match="choose auto, on or off"):
        parse_mirroring("sometimes")


def test_model_folder_wins_and_empty_fields_count_as_unset(tmp_path, monkeypatch):
    from ImprovedNNUNetLib.inference.models import ENV_VAR

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "models"))
    assert model_choice("ignored", tmp_path) == tmp_path
    with pytest.raises(UserError, match="no model chosen"):
        model_choice("", ".")
    with pytest.raises(UserError, match="neither a folder nor an imported model"):
        model_choice("not-imported", None)
