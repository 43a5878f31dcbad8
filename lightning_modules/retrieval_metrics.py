"""Retrieval metrics shared by person re-identification (MCNL) and sketch-based image retrieval (SAKE).

Both take a query x gallery distance matrix (numpy array or tensor, smaller = more similar) and the labels
of both sides, and are vectorised over queries and chunked so that full benchmark-sized evaluations take
seconds on a CPU. Each function's docstring states its protocol.
"""

from __future__ import annotations
