"""The student's heads of SAKE (arXiv:1904.03208 Sec. 3.2-3.3).

The pooled 2048-d CSE-ResNet features go through a linear embedding to ``d`` dimensions (the retrieval
feature; d = 64 in the paper's main tables), then two heads read that embedding: a ``d -> teacher classes``
linear layer whose logits are distilled from the teacher (ImageNet's 1000 classes), and a ``d -> benchmark
classes`` classifier trained with cross-entropy. The official code initialises the ``2048 -> d -> 1000`` pair
from an SVD of the pretrained ``1000 x 2048`` classifier, so that the student starts out predicting what the
teacher predicts (up to the rank-d truncation and the biases).

:class:`SakeStudent` groups the backbone and the heads as the official student ``CSEResnetModel_KDHashing``
(qliu24/SAKE ``src/ResnetModel.py``) does, without the teacher: what its ``model_best.pth.tar`` holds.
"""

from __future__ import annotations

import torch
from torch import nn


class SakeHeads(nn.Module):
    """Embedding (2048 -> d), distillation head (d -> teacher classes) and benchmark classifier (d -> classes).

    Args:
        feature_dim: backbone feature width (2048).
        embedding_dim: d, the retrieval feature size.
        teacher_classes: width of the teacher's classifier (1000 for ImageNet).
        num_classes: benchmark (seen) classes of the cross-entropy head.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, teacher_classes: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Linear(feature_dim, embedding_dim)
        self.distillation = nn.Linear(embedding_dim, teacher_classes)
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(embedding, teacher-class logits, benchmark logits)`` of pooled backbone features."""
        embedding = self.embedding(features)
        return embedding, self.distillation(embedding), self.classifier(embedding)

    @torch.no_grad()
    def initialise_from_classifier(self, classifier: nn.Linear) -> None:
        """Factor the teacher's ``classifier`` (W: K x 2048) into the embedding and distillation layers, as the
        official ``initialize_pretrained_model_hashing`` (``src/senet.py``) does.

        With W = U S V^T, the embedding gets S_d V_d^T and the distillation head U_d, so their product is the best
        rank-d approximation of W. The biases are not derived from W: both keep PyTorch's default ``nn.Linear``
        initialisation, as in the official code, which deletes the pretrained ``last_linear.bias`` and loads
        neither bias. When d exceeds rank(W) (the demo's 12-class teacher; the official code needs d <= K) the
        extra embedding rows keep their random initialisation and the matching distillation columns are zero.
        """
        weight = classifier.weight.detach().double()
        left, singular, right_t = torch.linalg.svd(weight, full_matrices=False)
        rank = min(self.embedding.out_features, singular.numel())
        self.embedding.weight[:rank] = (singular[:rank, None] * right_t[:rank]).to(self.embedding.weight.dtype)
        self.distillation.weight.zero_()
        self.distillation.weight[:, :rank] = left[:, :rank].to(self.distillation.weight.dtype)


class SakeStudent(nn.Module):
    """The student: CSE-ResNet features, then the heads (the official ``CSEResnetModel_KDHashing``).

    It holds the module's own ``net`` and ``heads`` (no copies), so loading weights into it loads the student.
    ``forward(images, domain)`` returns what the official model returns: ``(seen-class logits, ImageNet-head
    logits)``; :meth:`embed` the d-dim retrieval feature before L2 normalisation.
    """

    def __init__(self, net: nn.Module, heads: SakeHeads) -> None:
        super().__init__()
        self.net, self.heads = net, heads

    def embed(self, images: torch.Tensor, domain: torch.Tensor | int) -> torch.Tensor:
        return self.heads.embedding(self.net.features(images, domain))

    def forward(self, images: torch.Tensor, domain: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        _embedding, distillation_logits, logits = self.heads(self.net.features(images, domain))
        return logits, distillation_logits
