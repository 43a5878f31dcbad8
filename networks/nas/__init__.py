"""The DARTS family (DARTS, PC-DARTS, P-DARTS): operations, genotypes and evaluation networks.

DARTS arXiv:1806.09055, PC-DARTS arXiv:1907.05737, P-DARTS arXiv:1904.12760.
"""

from .genotypes import (
    GENOTYPE_FORMAT,
    PUBLISHED_GENOTYPES,
    Genotype,
    load_genotype_json,
    resolve_genotype,
    save_genotype_json,
    validate_genotype,
)
from .networks import (
    AuxiliaryHeadCIFAR,
    AuxiliaryHeadImageNet,
    GenotypeCell,
    NetworkCIFAR,
    NetworkImageNet,
    count_parameters_m,
    drop_path,
)
from .operations import (
    OPS,
    PRIMITIVES,
    DilConv,
    FactorizedReduce,
    Identity,
    ReLUConvBN,
    SepConv,
    Zero,
    build_op,
)

__all__ = [
    "GENOTYPE_FORMAT",
    "OPS",
    "PRIMITIVES",
    "PUBLISHED_GENOTYPES",
    "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet",
    "DilConv",
    "FactorizedReduce",
    "Genotype",
    "GenotypeCell",
    "Identity",
    "NetworkCIFAR",
    "NetworkImageNet",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "build_op",
    "count_parameters_m",
    "drop_path",
    "load_genotype_json",
    "resolve_genotype",
    "save_genotype_json",
    "validate_genotype",
]
