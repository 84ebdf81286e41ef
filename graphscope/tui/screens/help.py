"""`?`: the keys, on a screen of their own."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
[b]graphscope tui — keys[/b]

  ↑ ↓  j k  PgUp PgDn     move in the node table (mouse: click a row)
  ← →                     choose an edge of the current node (its inputs, then its users)
  Enter                   follow the chosen edge to that node
  /                       search: fuzzy words, and op:NAME kind:NAME scope:PREFIX filters
  Esc                     clear the search, or leave the search box
  t                       focus the scope tree (Enter there filters the table to a scope)
  > <                     enter the current node's subgraph / go back up
  s                       write the current scope as SVG (graphscope-<scope>.svg)
  g                       jump from a node to its gradient and back (trace --backward)

  step mode (graphscope tui model.py --fw FW): values appear as the steps run
  n p                     next / previous step      c   continue to a breakpoint or a NaN/Inf
  b                       toggle a breakpoint on the current node

  diff mode (graphscope tui A B): added green, removed red, changed gold, diverged magenta
  ] [                     next / previous change      d   show the other side (on the counterpart)
  ?                       this help          ctrl+p  the command palette
  q                       quit
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(KEYS)
