"""The scope tree: module / name-scope hierarchy with node counts; choosing a scope filters the table."""

from __future__ import annotations

from textual.widgets import Tree

from graphscope.tui.model import Level


class ScopeTree(Tree[str]):
    def load(self, level: Level, title: str) -> None:
        self.clear()
        self.root.set_label(f"{title} ({level.scope_counts.get('', 0)})")
        self.root.data = ""
        scopes = sorted(k for k in level.scope_counts if k)
        parents = {s.rsplit(".", 1)[0] for s in scopes if "." in s}
        tree_nodes = {"": self.root}
        for scope in scopes:
            parent, _, leaf = scope.rpartition(".")
            holder = tree_nodes.get(parent, self.root)
            label = f"{leaf} ({level.scope_counts[scope]})"
            if scope in parents:
                tree_nodes[scope] = holder.add(label, data=scope)
            else:
                holder.add_leaf(label, data=scope)
        self.root.expand()
