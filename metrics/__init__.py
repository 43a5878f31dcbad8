"""Metrics of the suite's methods, importable without Lightning (torchmetrics ``Metric`` classes and plain
functions over tensors / arrays): classification accuracy, COCO box AP, re-ID CMC / mAP, SBIR mAP / Prec@K, Dice,
the logit defense's accuracies. Modules log them; benchmarks and tests call them directly."""
