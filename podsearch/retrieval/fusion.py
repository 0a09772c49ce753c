"""Fusing several systems' rankings into one: weighted reciprocal rank fusion, or a weighted sum of scores.

`rrf` combines ranks alone, so BM25 and cosine scores need no calibration; `score` keeps how far ahead a system's top
hit is (min-max normalised per query and system, so the two scales meet on [0, 1]). Both are defined once here, for
the evaluate stage and for the search service.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from podsearch.errors import PodsearchError
from podsearch.retrieval.ranking import order_candidates

FUSION_METHODS = ("rrf", "score")


class FusionError(PodsearchError, ValueError):
    """A fused system defined wrongly in params.yaml; the stages print it as one line."""


@dataclass(frozen=True)
class Fusion:
    """One fused system: which systems it combines, with what weight, and how."""

    weights: Mapping[str, float]
    method: str = "rrf"
    rrf_k: int = 60
    depth: int = 100  # candidates taken from each system

    @classmethod
    def from_params(cls, name: str, params: Mapping, rrf_k: int, depth: int) -> "Fusion":
        where = f"params.yaml fusion.{name}"
        if not isinstance(params, Mapping) or not isinstance(params.get("weights"), Mapping):
            raise FusionError(f"{where}: expected {{method: rrf|score, weights: {{system: weight, ...}}}}")
        method = str(params.get("method", "rrf"))
        if method not in FUSION_METHODS:
            raise FusionError(f"{where}.method: {method!r}; expected one of {', '.join(FUSION_METHODS)}")
        try:
            weights = {str(system): float(weight) for system, weight in params["weights"].items()}
        except (TypeError, ValueError):
            raise FusionError(f"{where}.weights: every weight must be a number") from None
        if not any(weight > 0 for weight in weights.values()) or any(weight < 0 for weight in weights.values()):
            raise FusionError(f"{where}.weights: weights must be >= 0 with at least one > 0")
        return cls(weights=weights, method=method, rrf_k=int(rrf_k), depth=int(depth))

    @property
    def parts(self) -> list[str]:
        """The systems that contribute (weight > 0), in a fixed order."""
        return sorted(system for system, weight in self.weights.items() if weight > 0)

    def to_dict(self) -> dict:
        return {"method": self.method, "weights": dict(self.weights), "rrf_k": self.rrf_k, "depth": self.depth}

    def fuse(self, runs: Mapping[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[str]]]], top_k: int
             ) -> tuple[list[list[float]], list[list[str]]]:
        """runs[system] = (scores, ids) per query, best first. Returns the fused (scores, ids) per query, at most
        top_k each, ties broken by episode id."""
        missing = [p for p in self.parts if p not in runs]
        if missing:
            raise FusionError(f"fusion needs the rankings of {', '.join(missing)}")
        n_queries = {len(runs[p][1]) for p in self.parts}
        if len(n_queries) != 1:
            raise FusionError("fusion: every system must rank the same number of queries")
        all_scores, all_ids = [], []
        for q in range(n_queries.pop()):
            fused: dict[str, float] = {}
            for system in self.parts:
                scores, ids = runs[system][0][q][: self.depth], runs[system][1][q][: self.depth]
                for episode, contribution in zip(ids, self._contributions(scores)):
                    fused[episode] = fused.get(episode, 0.0) + self.weights[system] * contribution
            scores, ids = order_candidates(list(fused), list(fused.values()), top_k)
            all_scores.append(scores)
            all_ids.append(ids)
        return all_scores, all_ids

    def _contributions(self, scores: Sequence[float]) -> list[float]:
        if self.method == "rrf":
            return [1.0 / (self.rrf_k + rank) for rank in range(1, len(scores) + 1)]
        values = [float(s) for s in scores]
        if not values:
            return []
        low, high = min(values), max(values)
        # A system with one hit, or all hits equal, gives each the full weight: it has no preference among them.
        return [1.0 if high == low else (v - low) / (high - low) for v in values]



def load_fusions(params: Mapping) -> dict[str, Fusion]:
    """params.yaml `fusion`: rrf_k and depth shared by all, then one entry per fused system (hybrid, shipped, ...)."""
    for key in ("rrf_k", "depth"):
        if key not in params:
            raise FusionError(f"params.yaml fusion.{key}: missing")
    return {name: Fusion.from_params(name, spec, params["rrf_k"], params["depth"])
            for name, spec in params.items() if name not in ("rrf_k", "depth")}
