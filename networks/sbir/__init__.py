"""Networks of zero-shot sketch-based image retrieval (SAKE, arXiv:1904.03208): CSE-ResNet, heads, loss, schedule,
ITQ, and the converters of the official files (``networks.sbir.official``)."""

from networks.sbir.cse_resnet import PHOTO, SKETCH, CSEResNet, cse_resnet, cse_resnet50
from networks.sbir.heads import SakeHeads, SakeStudent
from networks.sbir.itq import ItqEncoder, fit_itq, hamming_distances
from networks.sbir.official import convert_sake_student_key, convert_se_resnet_key, load_se_resnet_weights
from networks.sbir.sake_loss import SakeLoss, distillation_loss, sake_loss, semantic_teacher_targets
from networks.sbir.schedule import sake_schedule

__all__ = [
    "PHOTO", "SKETCH", "CSEResNet", "ItqEncoder", "SakeHeads", "SakeLoss", "SakeStudent", "convert_sake_student_key",
    "convert_se_resnet_key", "cse_resnet", "cse_resnet50", "distillation_loss", "fit_itq", "hamming_distances",
    "load_se_resnet_weights", "sake_loss", "sake_schedule", "semantic_teacher_targets",
]
