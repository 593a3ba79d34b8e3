"""``maestro apply``: the workspace's ``features.yaml`` → Feast.

The whole declaration is read and checked first (types, views, sources and their
columns); only a declaration without a problem reaches Feast, so a bad file leaves the
registry as it was. Then each source gets its staged Parquet, the repo's
``definitions.py`` is brought up to date and Feast applies the generated objects (views
no longer declared are removed from the registry by Feast's own plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.declared import load_declaration
from features.errors import WorkspaceError
from features.staged_files import ensure_declaration, ensure_staged
from features.workspace import apply_repo, copy_definitions, feature_repo_path


@dataclass(frozen=True)
class ApplySummary:
    """What ``maestro apply`` applied."""

    path: str
    views: int
    features: int
    custom: int
    sources: int

    def line(self) -> str:
        return (
            f"applied {self.path}: {self.views} views, {self.features} features "
            f"({self.custom} custom), {self.sources} sources"
        )


def apply_workspace(home: Path | str) -> ApplySummary:
    """Check the workspace's declaration, then apply it to its Feast repo."""
    home = Path(home)
    repo = feature_repo_path(home).resolve()
    if not (repo / "feature_store.yaml").exists():
        raise WorkspaceError(f"no Feast repo at {repo}: run `maestro init`")
    decl = load_declaration(ensure_declaration(home), home)
    ensure_staged(repo, decl)
    copy_definitions(repo)
    apply_repo(repo)
    return ApplySummary(
        str(decl.path),
        len(decl.views),
        len(decl.features),
        len(decl.custom()),
        len(decl.sources),
    )
