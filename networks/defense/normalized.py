"""A classifier that takes images in pixel space ([0, 1]) and normalises them itself.

torchattacks (and the paper's attacks: "pixels in [0, 1]", arXiv:1906.10973 code) bound perturbations in
pixel space, while the suite's datamodules feed networks normalised images. Wrapping the network with its
normalisation lets every attack work on ``[0, 1]`` images with ``eps`` in pixel units (16/255 means 16 grey
levels), and the gradient flows through the normalisation as it should.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class NormalizedClassifier(nn.Module):
    """``classifier((images - mean) / std)`` for ``images`` in [0, 1]; optionally followed by ``head``.

    Args:
        classifier: The network that expects normalised images and returns logits.
        mean: Per-channel mean of the datamodule's ``Normalize`` (empty for none).
        std: Per-channel standard deviation of that ``Normalize``.
        head: A module applied to the logits (the defender, for the adaptive white-box attack).
    """

    def __init__(self, classifier: nn.Module, mean: Sequence[float] = (), std: Sequence[float] = (),
                 head: nn.Module | None = None) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        self.classifier = classifier
        self.head = head
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean.numel():
            images = (images - self.mean) / self.std
        logits = self.classifier(images)
        return logits if self.head is None else self.head(logits)
