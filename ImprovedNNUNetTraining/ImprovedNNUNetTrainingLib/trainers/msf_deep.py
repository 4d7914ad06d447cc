"""`msf_deep` variant: `msf` with a deeper and wider encoder (He et al., §3.2)."""
from copy import deepcopy

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from ImprovedNNUNetTrainingLib.trainers.msf import nnUNetTrainerMSF


class nnUNetTrainerMSFDeep(nnUNetTrainerMSF):
    """Features per stage capped at 512 instead of 320, and a deeper encoder.

    Plain U-Net plans (``n_conv_per_stage``): 3 convolutions per encoder stage instead of nnU-Net's 2.
    Residual-encoder plans (``n_blocks_per_stage``, the ResEnc presets): one residual block more per
    encoder stage than the preset has (the presets already use 1-6 blocks, so setting every stage to 3
    would make the later stages shallower, not deeper).
    """

    max_features = 512
    encoder_convs_per_stage = 3

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        kwargs = deepcopy(configuration_manager.network_arch_init_kwargs)
        base = kwargs["features_per_stage"][0]
        kwargs["features_per_stage"] = [min(base * 2 ** i, cls.max_features) for i in range(kwargs["n_stages"])]
        if "n_blocks_per_stage" in kwargs:  # residual encoder
            kwargs["n_blocks_per_stage"] = [int(blocks) + 1 for blocks in kwargs["n_blocks_per_stage"]]
        else:
            kwargs["n_conv_per_stage"] = [cls.encoder_convs_per_stage] * kwargs["n_stages"]
        return get_network_from_plans(configuration_manager.network_arch_class_name, kwargs,
                                      configuration_manager.network_arch_init_kwargs_req_import,
                                      num_input_channels, num_output_channels, allow_init=True,
                                      deep_supervision=enable_deep_supervision)
