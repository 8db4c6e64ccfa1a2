"""Accuracy of extracted mine patches against reference patches (seed 003 §3.1, SPEC §5.3).

Pixel level: the confusion matrix of mine / not mine, overall accuracy, producer's accuracy
(recall of mines), user's accuracy (precision), Cohen's kappa and F1. Object level: a reference
patch is identified when an extracted patch overlaps it; each extracted patch is attributed to
the reference patch it overlaps most, and a patch's area similarity is
min(A_extracted, A_reference) / max(…) of the patches attributed to it (1 = same area); the paper
reports the mean over identified patches.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
from scipy import ndimage


@dataclass
class PatchScore:
    reference_id: int
    area_reference: float
    area_extracted: float
    identified: bool
    similarity: float


@dataclass
class Scores:
    tp: int
    fp: int
    fn: int
    tn: int
    patches: List[PatchScore] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def overall_accuracy(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else float("nan")

    @property
    def producers_accuracy(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def users_accuracy(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")

    @property
    def kappa(self) -> float:
        total = float(self.total)
        if not total:
            return float("nan")
        observed = (self.tp + self.tn) / total
        expected = ((self.tp + self.fp) * (self.tp + self.fn) + (self.fn + self.tn) * (self.fp + self.tn)) / total**2
        return (observed - expected) / (1.0 - expected) if expected < 1.0 else float("nan")

    @property
    def identification_rate(self) -> float:
        return float(np.mean([p.identified for p in self.patches])) if self.patches else float("nan")

    @property
    def mean_area_similarity(self) -> float:
        values = [p.similarity for p in self.patches if p.identified]
        return float(np.mean(values)) if values else float("nan")

    def as_dict(self) -> Dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "oa": self.overall_accuracy,
                "producers_accuracy": self.producers_accuracy, "users_accuracy": self.users_accuracy,
                "kappa": self.kappa, "f1": self.f1, "identification_rate": self.identification_rate,
                "identified": sum(p.identified for p in self.patches), "reference_patches": len(self.patches),
                "mean_area_similarity": self.mean_area_similarity}


def evaluate(extracted: np.ndarray, reference: np.ndarray, valid: Optional[np.ndarray] = None,
             pixel_area: float = 1.0) -> Scores:
    """``extracted``: bool mask (or patch ids > 0); ``reference``: int patch ids (0 = background)."""
    extracted_mask = np.asarray(extracted) > 0
    reference_mask = np.asarray(reference) > 0
    if valid is not None:
        extracted_mask, reference_mask = extracted_mask & valid, reference_mask & valid
        tn = int(np.sum(valid & ~extracted_mask & ~reference_mask))
    else:
        tn = int(np.sum(~extracted_mask & ~reference_mask))
    tp = int(np.sum(extracted_mask & reference_mask))
    fp = int(np.sum(extracted_mask & ~reference_mask))
    fn = int(np.sum(~extracted_mask & reference_mask))
    scores = Scores(tp, fp, fn, tn)

    components, count = ndimage.label(extracted_mask)
    reference = np.where(reference_mask, reference, 0).astype(np.int64)
    reference_ids = np.unique(reference[reference > 0])
    if reference_ids.size == 0:
        return scores
    size_ref = np.bincount(reference.ravel(), minlength=reference_ids.max() + 1)
    size_ext = np.bincount(components.ravel(), minlength=count + 1)
    # Each extracted component goes to the reference patch it overlaps most.
    both = (components > 0) & (reference > 0)
    attributed = np.zeros(reference_ids.max() + 1)
    if both.any():
        pairs = components[both].astype(np.int64) * (reference_ids.max() + 1) + reference[both]
        unique, overlap = np.unique(pairs, return_counts=True)
        component, patch = np.divmod(unique, reference_ids.max() + 1)
        order = np.lexsort((-overlap, component))
        first = np.r_[True, component[order][1:] != component[order][:-1]]
        np.add.at(attributed, patch[order][first], size_ext[component[order][first]])
        touched = np.zeros(reference_ids.max() + 1, dtype=bool)
        touched[patch] = True
    else:
        touched = np.zeros(reference_ids.max() + 1, dtype=bool)
    for rid in reference_ids:
        a_ref, a_ext = float(size_ref[rid]), float(attributed[rid])
        similarity = min(a_ref, a_ext) / max(a_ref, a_ext) if touched[rid] and a_ext > 0 else 0.0
        scores.patches.append(PatchScore(int(rid), a_ref * pixel_area, a_ext * pixel_area, bool(touched[rid]), similarity))
    return scores
