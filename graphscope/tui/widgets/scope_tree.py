"""The scope tree: module / name-scope hierarchy with node counts; choosing a scope filters the table."""

from __future__ import annotations

from collections import defaultdict

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from graphscope.rendering.terminal import one_line
from graphscope.tui.model import Level


class ScopeTree(Tree[str]):
    """Children are added when their parent is first expanded: a 200k-node graph has 60k
    scopes, and adding them all to the tree was most of the time the app took to open."""

    def load(self, level: Level, title: str) -> None:
        self.clear()
        # Labels as Text, never as strings: a string label is read as markup, and a scope or
        # graph named "[link=...]" in a downloaded file would be a link, "[b]" bold.
        self.root.set_label(Text(f"{one_line(title)} ({level.scope_counts.get('', 0)})"))
        self.root.data = ""
        self._counts = level.scope_counts
        self._folds = level.folds
        self._children: dict[str, list[str]] = defaultdict(list)
        for scope in sorted(k for k in level.scope_counts if k):
            self._children[scope.rpartition(".")[0]].append(scope)
        self._add_scopes(self.root)
        self.root.expand()

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        """A label too long for the pane ends in ``…`` (it was cut mid-word, silently)."""
        label = super().render_label(node, base_style, style)
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        room = self.scrollable_content_region.width - 4 * depth
        if room > 3 and label.cell_len > room:
            label = label.copy()
            label.truncate(room, overflow="ellipsis")
        return label

    def wanted_width(self) -> int:
        """Columns that show the root's label and its children's whole (with the tree's guides)."""
        root = cell_len(str(self.root.label)) + 2  # "▼ "
        children = max((cell_len(str(c.label)) + 6 for c in self.root.children), default=0)  # "├── ▶ "
        return max(root, children) + 2  # the border and a scrollbar's room

    def _add_scopes(self, node: TreeNode[str]) -> None:
        parent = node.data or ""
        fold = self._folds.get(parent)
        folded = {".".join((*fold.parent, m)) for m in fold.members[1:]} if fold else set()
        for scope in self._children.get(parent, []):
            if scope in folded:
                continue
            label = Text(f"{one_line(scope.rpartition('.')[2])} ({self._counts[scope]})")
            badge = self._folds.get(scope)
            if badge is not None:  # a run of identical blocks under it: `layers ×80`
                label.append(f" ×{badge.count}", style="bold")
            if scope in self._children:
                node.add(label, data=scope)
            else:
                node.add_leaf(label, data=scope)
        if fold is not None:
            # The blocks after the first in one line: choosing it shows them all (the parent).
            rest = sum(self._counts[s] for s in folded)
            label = Text(
                f"{one_line(fold.members[1])} … {one_line(fold.members[-1])} ({rest}): "
                f"×{fold.count - 1} more like {one_line(fold.members[0])}",
                style="dim",
            )
            node.add_leaf(label, data=parent)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        node = event.node
        if node is not self.root and not node.children:
            self._add_scopes(node)
