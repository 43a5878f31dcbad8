"""Networks of zero-shot sketch-based image retrieval (SAKE, arXiv:1904.03208): CSE-ResNet, heads, loss, ITQ."""

from networks.sbir.cse_resnet import PHOTO, SKETCH, CSEResNet, cse_resnet, cse_resnet50, load_cse_weights
from networks.sbir.heads import SakeHeads
from networks.sbir.itq import ItqEncoder, fit_itq, hamming_distances
from networks.sbir.sake_loss import distillation_loss, sake_loss, semantic_teacher_targets

__all__ = [
    "PHOTO", "SKETCH", "CSEResNet", "ItqEncoder", "SakeHeads", "cse_resnet", "cse_resnet50", "distillation_loss",
    "fit_itq", "hamming_distances", "load_cse_weights", "sake_loss", "semantic_teacher_targets",
]
