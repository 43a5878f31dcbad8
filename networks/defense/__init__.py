"""Networks and attacks of the logit-based adversarial defense (Li, Xie et al., arXiv:1906.10973)."""

from networks.defense.attacks import ATTACKS, build_attack, validate_attack_spec
from networks.defense.logit_defender import DefenderBank, LogitDefender
from networks.defense.normalized import NormalizedClassifier

__all__ = ["ATTACKS", "DefenderBank", "LogitDefender", "NormalizedClassifier", "build_attack",
           "validate_attack_spec"]
