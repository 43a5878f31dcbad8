"""Pruning from Scratch (arXiv:1909.12579): channel gates, the multiply-add table, FLOPs-exact structure search
by global ranking and bisection, kept-channel surgery, and the conventional baseline's importance criteria."""
