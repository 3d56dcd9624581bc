"""Joining items to known themes and founding new ones, within one group on one day.

An item joins the known theme whose centroid is most similar to it when that cosine similarity
reaches `join_similarity`. The items that join nothing, together with the group's recent outliers
(the pool), are clustered by average linkage: a cluster's members are on average at least
`cluster_similarity` alike. A cluster of at least `min_size` members that holds one of today's
items founds a theme; today's items still unplaced may then join a new theme by centroid. What is
left are outliers.

Two thresholds because they measure different things: an item's cosine to a centroid runs higher
than the average cosine between members (about its square root), so one number cannot serve both.
The defaults suit all-MiniLM-L6-v2 on short complaint sentences: paraphrases score 0.55-0.75, two
different complaints under one label 0.3-0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


@dataclass(frozen=True)
class ClusterParams:
    join_similarity: float = 0.7
    cluster_similarity: float = 0.55
    min_size: int = 3
    pool_days: int = 7


@dataclass(frozen=True, eq=False)
class NewTheme:
    pool_members: np.ndarray  # founding members from the pool (indices into it)
    today_members: np.ndarray  # founding members of today (indices into today's items)
    centroid: np.ndarray


@dataclass
class DayThemes:
    theme: np.ndarray  # per item of today: index into [*known themes, *new themes], or -1 for an outlier
    similarity: np.ndarray  # per item of today: cosine to its theme's centroid, or to the nearest one (nan: none)
    new_themes: list[NewTheme]


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of unit vectors."""
    mean = vectors.mean(axis=0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def nearest(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's most similar centroid and the cosine to it (-1 and nan when there are no centroids)."""
    if not len(centroids):
        return np.full(len(vectors), -1), np.full(len(vectors), np.nan)
    similarity = vectors @ centroids.T
    best = similarity.argmax(axis=1)
    return best, similarity[np.arange(len(vectors)), best]


def clusters(vectors: np.ndarray, similarity: float) -> list[np.ndarray]:
    """Average-linkage clusters whose members are on average at least `similarity` alike, largest first."""
    if len(vectors) < 2:
        return [np.arange(len(vectors))] if len(vectors) else []
    distances = np.clip(1 - vectors @ vectors.T, 0, 2)
    np.fill_diagonal(distances, 0)
    tree = linkage(squareform(distances, checks=False), method="average")
    assignment = fcluster(tree, t=1 - similarity, criterion="distance")
    groups = [np.flatnonzero(assignment == c) for c in np.unique(assignment)]
    return sorted(groups, key=lambda members: (-len(members), members[0]))


def theme_day(today: np.ndarray, centroids: np.ndarray, pool: np.ndarray, params: ClusterParams) -> DayThemes:
    """Joins today's items to known themes, founds new themes from the rest and the pool (see the module docstring)."""
    best, similarity = nearest(today, centroids)
    theme = np.where(similarity >= params.join_similarity, best, -1)
    loose = np.flatnonzero(theme == -1)
    candidates = np.concatenate([pool, today[loose]])
    new_themes = []
    for members in clusters(candidates, params.cluster_similarity):
        mine = members[members >= len(pool)] - len(pool)
        if len(members) >= params.min_size and len(mine):
            new_themes.append(NewTheme(members[members < len(pool)], loose[mine], centroid(candidates[members])))
    for index, new in enumerate(new_themes):
        theme[new.today_members] = len(centroids) + index
    if new_themes:
        unplaced = np.flatnonzero(theme == -1)
        best_new, similarity_new = nearest(today[unplaced], np.stack([new.centroid for new in new_themes]))
        theme[unplaced] = np.where(similarity_new >= params.join_similarity, len(centroids) + best_new, -1)
        centroids = np.concatenate([centroids, np.stack([new.centroid for new in new_themes])])
    placed = theme >= 0
    similarity = nearest(today, centroids)[1]
    similarity[placed] = np.einsum("ij,ij->i", today[placed], centroids[theme[placed]])
    return DayThemes(theme, similarity, new_themes)
