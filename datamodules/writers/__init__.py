"""Writers of tiny datasets in the real on-disk formats, for tests and demos: one module per format.

``cifar`` (CIFAR python pickles), ``imagefolder`` (ImageNet layout), ``coco`` (COCO json + images),
``market1501`` (Market-1501 / DukeMTMC-reID file names), ``sketch_photo`` (Sketchy / TU-Berlin Extended class
folders), ``nifti`` (Decathlon NIfTI volumes), ``logit_dataset`` (the logit defense's sharded logits),
``corruption`` (truncated / garbage files), ``generated`` (generate-once, stamped demo folders). The lighter
ones are re-exported here; import the others from their module.
"""

from datamodules.writers.cifar import write_cifar10, write_cifar100
from datamodules.writers.coco import write_coco_split, write_tiny_coco
from datamodules.writers.corruption import truncate_file, write_garbage
from datamodules.writers.imagefolder import write_image_folder

__all__ = [
    "truncate_file",
    "write_cifar10",
    "write_cifar100",
    "write_coco_split",
    "write_garbage",
    "write_image_folder",
    "write_tiny_coco",
]
