"""What the suite's pictures share: one colour per class, so a class has the same colour in every picture."""

from __future__ import annotations

#: 14 of Sasha Trubetskoy's 20 distinct colours, in order of distinctness.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
)  # fmt: skip


def class_colour(label: int) -> tuple[int, int, int]:
    """The colour of class index ``label`` (the palette repeats after its last colour)."""
    return PALETTE[int(label) % len(PALETTE)]


__all__ = ["PALETTE", "class_colour"]
