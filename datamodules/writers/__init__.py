"""Writers of tiny datasets in the real on-disk formats (CIFAR pickles, ImageFolder, ...), for tests and demos."""

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
