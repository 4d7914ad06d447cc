"""One builder for the `train` command line: what it builds, the command's own parser reads back unchanged,
and the Training panel's jobs and the studies' trainings both start their children with it."""
import pytest

from ImprovedNNUNetTrainingLib.engine.train_command import MODES, TrainCommand


def parsed(command: TrainCommand) -> list[TrainCommand]:
    from ImprovedNNUNetLib.cli.main import build_parser

    parser, _ = build_parser()
    return TrainCommand.from_namespace(parser.parse_args(command.arguments()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("command", [
    TrainCommand("Dataset001_A", "baseline", 0),
    TrainCommand("Dataset987_TinyChest", "improved", "all", "2d", "nnUNetResEncUNetMPlans", "cuda:1", 5, 3, 2,
                 {"dice_weight": 2.0, "noise_variance": [0.0, 0.3]}, npz=True, json_events=True),
    TrainCommand("12", "msf", 4, device="cpu", hyperparameters={"msf_dilation_radius": 5}),
])
def test_parse_of_build_is_the_same_command(command, mode):
    command.mode = mode
    assert parsed(command) == [command]


def test_panel_jobs_and_studies_build_through_it(monkeypatch):
    import inspect

    from ImprovedNNUNetTrainingLib.analysis.study import trainings
    from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest

    for source in (inspect.getsource(TrainingRequest.train_arguments), inspect.getsource(trainings.Training.arguments)):
        assert "TrainCommand(" in source and '"--variant"' not in source
