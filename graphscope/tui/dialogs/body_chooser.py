"""`>` on a node with several bodies (then / else, cond / body): which one to enter."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from graphscope.rendering.terminal import one_line


class BodyChooser(ModalScreen[str | None]):
    """A list of the node's bodies; Enter (or the body's number) enters one, Esc enters none."""

    DEFAULT_CSS = """
    BodyChooser {
        align: center middle;
    }
    BodyChooser > Vertical {
        width: 56;
        max-width: 100%;
        height: auto;
        padding: 0 1;
        border: thick $primary;
        border-title-align: left;
        background: $surface;
    }
    BodyChooser Static {
        color: $text-muted;
    }
    BodyChooser OptionList, BodyChooser OptionList:focus {
        height: auto;
        max-height: 16;
        border: none;
        padding: 0;
        margin: 1 0;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss(None)", "cancel"),
        *(Binding(str(i), f"choose({i - 1})", show=False) for i in range(1, 10)),
    ]

    def __init__(self, node_id: str, bodies: list[str], sizes: dict[str, int]) -> None:
        super().__init__()
        self.node_id = node_id
        self.bodies = bodies
        self.sizes = sizes  # body -> its node count (0 when the file does not hold it)

    def compose(self) -> ComposeResult:
        box = Vertical()
        box.border_title = Text(f"enter which body of {one_line(self.node_id)}?")  # text, not markup
        with box:
            yield OptionList(
                *(
                    Option(Text(f"{i}  {one_line(body)}  ({self.sizes.get(body, 0)} nodes)"), id=body)
                    for i, body in enumerate(self.bodies, 1)
                ),
                id="bodies",
            )
            yield Static("Enter or 1-9 enters · Esc stays here")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_choose(self, index: int) -> None:
        if 0 <= index < len(self.bodies):
            self.dismiss(self.bodies[index])
