"""The project's epoch loop calls nnU-Net's trainer hooks in the order ``nnUNetTrainer.run_training`` does,
with gradients off exactly where nnU-Net turns them off (``on_validation_epoch_end`` inside ``no_grad``).

Both loops run on one recording stand-in trainer: nnU-Net's own ``run_training`` (unbound, the real code of
the installed nnU-Net) and ``EpochLoop.run``; their call sequences must be equal."""
import io

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ImprovedNNUNetTrainingLib.engine.cancel import CancelGuard
from ImprovedNNUNetTrainingLib.engine.loop import EpochLoop
from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

HOOKS = ("on_train_start", "on_epoch_start", "on_train_epoch_start", "train_step", "on_train_epoch_end",
         "on_validation_epoch_start", "validation_step", "on_validation_epoch_end", "on_epoch_end", "on_train_end")


class _Logger:
    def get_value(self, key, step):
        return 0.5


class RecordingTrainer:
    """Only what both loops touch; each hook records (name, gradients enabled)."""

    def __init__(self, epochs=2, iterations=3, validation_iterations=2):
        self.calls = []
        self.current_epoch = 0
        self.num_epochs, self.num_iterations_per_epoch = epochs, iterations
        self.num_val_iterations_per_epoch = validation_iterations
        self.dataloader_train = iter(range(10 ** 6))
        self.dataloader_val = iter(range(10 ** 6))
        self.logger = _Logger()
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
        for name in HOOKS:
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        def hook(*args):
            self.calls.append((name, torch.is_grad_enabled()))
            if name == "on_epoch_end":
                self.current_epoch += 1
            return {"loss": 1.0} if name == "train_step" else {}
        return hook


def test_epoch_loop_calls_the_hooks_as_nnunet_run_training_does():
    theirs = RecordingTrainer()
    nnUNetTrainer.run_training(theirs)
    ours = RecordingTrainer()
    ours.on_train_start()  # the runner calls it (inside its console redirection) before the loop
    with CancelGuard() as guard:
        EpochLoop(ours, ProgressReporter(stream=io.StringIO()), guard).run()
    ours.on_train_end()  # the runner calls it after the loop
    assert ours.calls == theirs.calls
    assert ("on_validation_epoch_end", False) in theirs.calls  # the rule that had drifted
