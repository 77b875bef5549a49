"""Dependency questions about an evaluation: direct and transitive edges."""
from __future__ import annotations

from components.offline.program import Evaluation


def _provider_urn(reference: str) -> str:
    return reference.rsplit("::", 1)[0] if reference else ""


class Graph:
    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation
        self.by_urn = {r.urn: r for r in evaluation.registrations}
        self.edges: dict[str, set[str]] = {}
        for r in evaluation.registrations:
            edges = set(r.dependencies)
            if r.provider:
                edges.add(_provider_urn(r.provider))
            self.edges[r.urn] = edges

    def urn(self, name: str) -> str:
        return self.evaluation.urn_of(name)

    def direct(self, name: str) -> set[str]:
        return {self.by_urn[u].name for u in self.edges[self.urn(name)] if u in self.by_urn}

    def upstream(self, name: str) -> set[str]:
        """Every resource `name` waits for, through dependencies and providers."""
        seen: set[str] = set()
        stack = [self.urn(name)]
        while stack:
            for dep in self.edges.get(stack.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return {self.by_urn[u].name for u in seen if u in self.by_urn}

    def waits_for(self, later: str, earlier: str) -> bool:
        return earlier in self.upstream(later)
