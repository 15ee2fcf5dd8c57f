"""Levenshtein alignment counts and phone error rate with Lee & Hon's 39-phone folding."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from tfspk import phones


@dataclasses.dataclass(frozen=True)
class EditCounts:
    """Edits of a minimum-cost alignment of a hypothesis to a reference."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(*(a + b for a, b in zip(dataclasses.astuple(self),
                                                  dataclasses.astuple(other))))

    @property
    def error_rate(self) -> float:
        """errors / reference length (can exceed 1 with many insertions)."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length


def edit_distance(reference: Sequence, hypothesis: Sequence) -> EditCounts:
    """Minimum number of substitutions, deletions and insertions turning `reference` into
    `hypothesis` (unit costs), with the counts of each kind.

    Where alignments tie on cost, each step prefers a substitution (or match), then a
    deletion, then an insertion, so the split into kinds is deterministic.
    """
    rows, cols = len(reference), len(hypothesis)
    # cost[i][j] = (total, substitutions, deletions, insertions) aligning ref[:i], hyp[:j].
    previous = [(j, 0, 0, j) for j in range(cols + 1)]
    for i in range(1, rows + 1):
        current = [(i, 0, i, 0)]
        for j in range(1, cols + 1):
            diagonal = previous[j - 1]
            if reference[i - 1] == hypothesis[j - 1]:
                match = diagonal
            else:
                match = (diagonal[0] + 1, diagonal[1] + 1, diagonal[2], diagonal[3])
            up = previous[j]
            deletion = (up[0] + 1, up[1], up[2] + 1, up[3])
            left = current[j - 1]
            insertion = (left[0] + 1, left[1], left[2], left[3] + 1)
            current.append(min((match, deletion, insertion), key=lambda cell: cell[0]))
        previous = current
    _, substitutions, deletions, insertions = previous[cols]
    return EditCounts(substitutions, deletions, insertions, rows)


def fold_label(label: str):
    """A TIMIT-61 label folded to the 39-phone set (None for q); a label already in the
    39-phone set (such as a recognizer's `sil`) is kept."""
    normalized = label.strip().lower()
    if normalized not in phones.FOLD_61_TO_39 and normalized in phones.TIMIT39:
        return normalized
    return phones.fold_to_39(normalized)


def fold_phones(labels: Iterable[str]) -> list[str]:
    """Labels folded to the 39-phone set, with deleted phones (q) removed."""
    folded = (fold_label(label) for label in labels)
    return [label for label in folded if label is not None]


def phone_error_rate(references: Iterable[Sequence[str]],
                     hypotheses: Iterable[Sequence[str]], fold: bool = True) -> EditCounts:
    """Summed edit counts over utterances; `.error_rate` is the corpus PER.

    With `fold`, both sides are folded to 39 phones (q removed) before alignment.
    """
    total = EditCounts()
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    for reference, hypothesis in zip(references, hypotheses):
        if fold:
            reference, hypothesis = fold_phones(reference), fold_phones(hypothesis)
        total = total + edit_distance(reference, hypothesis)
    return total
