"""Where each correct match lands in a query's ranked gallery: the core of ``reid_cmc_map`` (re-ID protocol).

CMC and non-interpolated AP need only the rank of every correct match among the kept gallery items (kept:
not the query's identity AND camera), not a full sort of each gallery row. Both paths below return, per
query row, the 1-based ranks of its matches in increasing order; ranking follows a stable sort of the
float32 distances (equal distances keep gallery order).

* :func:`match_ranks` (fast): the few gallery items of the query's identity come from a per-identity table
  (no query x gallery label comparison); the matches are sorted among themselves; every gallery item is
  placed among them with one binary search, and a histogram with a cumulative sum gives the ranks. Rows
  where a non-match item's distance equals a match's distance exactly are passed to the exact path.
* :func:`exact_match_ranks`: the same with distinct (distance, gallery position) integer keys, for ties.
"""

from __future__ import annotations

import torch

KEY_PAD = torch.iinfo(torch.int64).max


class IdentityTable:
    """Gallery positions of every identity, padded with -1: ``table[row]`` for the identity ``identities[row]``."""

    def __init__(self, gallery_ids: torch.Tensor) -> None:
        order = torch.argsort(gallery_ids, stable=True)
        self.identities, counts = torch.unique_consecutive(gallery_ids[order], return_counts=True)
        starts = torch.cumsum(counts, dim=0) - counts
        group = torch.repeat_interleave(torch.arange(len(counts)), counts)
        within = torch.arange(len(order)) - starts[group]
        self.table = torch.full((len(counts), int(counts.max()) if len(counts) else 0), -1, dtype=torch.int64)
        self.table[group, within] = order

    def positions(self, query_ids: torch.Tensor) -> torch.Tensor:
        """``(num_query, width)`` gallery positions of each query's identity (-1 padding / absent identity)."""
        row = torch.searchsorted(self.identities, query_ids).clamp(max=max(len(self.identities) - 1, 0))
        present = self.identities[row] == query_ids
        return self.table[row].masked_fill(~present[:, None], -1)


def _keys(distances: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Distinct int64 keys ordering like a stable sort: monotonic float32 bits high, gallery position low."""
    bits = distances.float().contiguous().view(torch.int32)
    monotonic = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (monotonic.to(torch.int64) << 32) | positions


def exact_match_ranks(distances: torch.Tensor, query_ids: torch.Tensor, query_cameras: torch.Tensor,
                      gallery_ids: torch.Tensor, gallery_cameras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ranks, num_matches)``: 1-based ranks (padded with 0) of each row's matches, via distinct keys."""
    same_id = gallery_ids[None, :] == query_ids[:, None]
    kept = ~(same_id & (gallery_cameras[None, :] == query_cameras[:, None]))
    matches = same_id & kept
    num_matches = matches.sum(dim=1)
    most = max(int(num_matches.max()) if len(num_matches) else 0, 1)
    keys = _keys(distances, torch.arange(distances.shape[1])[None, :])
    match_keys = keys.masked_fill(~matches, KEY_PAD).topk(most, dim=1, largest=False, sorted=True).values
    bucket = torch.searchsorted(match_keys, keys)  # matches ranked before each item (keys are distinct)
    counts = torch.zeros(len(keys), most + 1, dtype=torch.int64).scatter_add_(1, bucket, kept.to(torch.int64))
    ranks = torch.cumsum(counts, dim=1)[:, :most]
    real = torch.arange(most)[None, :] < num_matches[:, None]
    return ranks * real, num_matches


def match_ranks(distances: torch.Tensor, query_ids: torch.Tensor, query_cameras: torch.Tensor,
                gallery_ids: torch.Tensor, gallery_cameras: torch.Tensor,
                table: IdentityTable) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ranks, num_matches)`` like :func:`exact_match_ranks`, touching each gallery row with one binary search."""
    distances = distances.float()
    candidates = table.positions(query_ids)                                  # (Q, L), -1 padded
    valid = candidates >= 0
    safe = candidates.clamp(min=0)
    same_camera = gallery_cameras[safe] == query_cameras[:, None]
    is_match = valid & ~same_camera  # the rest of the valid candidates are dropped (same camera)
    num_matches = is_match.sum(dim=1)
    most = max(int(num_matches.max()) if len(num_matches) else 0, 1)
    candidate_distances = distances.gather(1, safe)
    # the matches in stable-sort order (distance, then gallery position); padding sorts last (+inf)
    match_keys = _keys(candidate_distances, safe).masked_fill(~is_match, KEY_PAD)
    order = match_keys.topk(min(most, match_keys.shape[1]), dim=1, largest=False, sorted=True).indices
    sorted_distances = candidate_distances.gather(1, order).masked_fill(~is_match.gather(1, order), float("inf"))
    # every gallery item: how many matches have a strictly smaller distance
    bucket = torch.searchsorted(sorted_distances, distances)                # (Q, G)
    counts = torch.zeros(len(distances), most + 1, dtype=torch.int64)
    counts.scatter_add_(1, bucket, torch.ones_like(bucket))
    # take out the query identity's own items (matches and dropped same-camera ones): only non-matches stay
    own_bucket = torch.searchsorted(sorted_distances, candidate_distances)
    counts.scatter_add_(1, own_bucket, -valid.to(torch.int64))
    ranks = torch.cumsum(counts, dim=1)[:, :most] + torch.arange(1, most + 1)[None, :]
    # exact ties between a non-match item and a match distance need the gallery position: exact path
    tied = (bucket < most) & (sorted_distances.gather(1, bucket.clamp(max=most - 1)) == distances)
    own_tied = (own_bucket < most) & (sorted_distances.gather(1, own_bucket.clamp(max=most - 1)) == candidate_distances)
    needs_exact = tied.sum(dim=1) != (own_tied & valid).sum(dim=1)
    real = torch.arange(most)[None, :] < num_matches[:, None]
    ranks = ranks * real
    if bool(needs_exact.any()):
        rows = needs_exact.nonzero().squeeze(1)
        exact, _ = exact_match_ranks(distances[rows], query_ids[rows], query_cameras[rows], gallery_ids, gallery_cameras)
        ranks[rows] = torch.nn.functional.pad(exact, (0, most - exact.shape[1]))
    return ranks, num_matches
