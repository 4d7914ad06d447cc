"""`augment` variant: stronger rotation, Gaussian noise and low-resolution simulation (Wu, §3.2).

The stock pipeline is built by nnU-Net and only the three transforms' probabilities and
ranges are changed, so every other transform stays exactly as nnU-Net configures it.
"""
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS


def iter_transforms(compose):
    """(wrapper or None, transform) for each transform of a ComposeTransforms, unwrapping RandomTransform."""
    for transform in compose.transforms:
        if isinstance(transform, RandomTransform):
            yield transform, transform.transform
        else:
            yield None, transform


class nnUNetTrainerAugment(nnUNetTrainer):
    """Stock nnU-Net with the stronger augmentation of the improved nnU-Net."""

    rotation_probability = VARIANT_DEFAULTS["augment"]["rotation_probability"]
    noise_probability = VARIANT_DEFAULTS["augment"]["noise_probability"]
    noise_variance = tuple(VARIANT_DEFAULTS["augment"]["noise_variance"])
    low_resolution_probability = VARIANT_DEFAULTS["augment"]["low_resolution_probability"]
    low_resolution_scale = tuple(VARIANT_DEFAULTS["augment"]["low_resolution_scale"])

    @classmethod
    def get_training_transforms(cls, *args, **kwargs):
        compose = super().get_training_transforms(*args, **kwargs)
        for wrapper, transform in iter_transforms(compose):
            if isinstance(transform, SpatialTransform):
                transform.p_rotation = cls.rotation_probability
            elif isinstance(transform, GaussianNoiseTransform):
                transform.noise_variance = cls.noise_variance
                wrapper.apply_probability = cls.noise_probability
            elif isinstance(transform, SimulateLowResolutionTransform):
                transform.scale = cls.low_resolution_scale
                wrapper.apply_probability = cls.low_resolution_probability
        return compose
