"""Networks and attacks of the logit-based adversarial defense (Li, Xie et al., arXiv:1906.10973)."""

from networks.defense.attacks import (
           ATTACKS,
           attack_parameters,
           build_attack,
           record_logits,
           seeded,
           shard_seed,
)
from networks.defense.classifier import DefendedClassifier, load_classifier
from networks.defense.logit_defender import DefenderBank, LogitDefender
from networks.defense.normalized import NormalizedClassifier

__all__ = ["ATTACKS", "DefendedClassifier", "DefenderBank", "LogitDefender", "NormalizedClassifier",
           "attack_parameters", "build_attack", "load_classifier", "record_logits", "seeded", "shard_seed"]
