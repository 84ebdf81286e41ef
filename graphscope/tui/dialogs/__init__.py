"""Small modal questions the TUI asks (which body of a control-flow node to enter)."""
