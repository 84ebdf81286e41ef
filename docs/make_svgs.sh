#!/usr/bin/env bash
# Redraw the README's SVG diagrams with graphscope itself (run after a rendering change).
# The TUI screenshots come from docs/tui_screenshots.py.
set -euo pipefail
cd "$(dirname "$0")/.."
gs() { "${GRAPHSCOPE:-.venv/bin/graphscope}" -q "$@" > /dev/null; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gs trace examples/or_gate_torch.py --fw torch --method export --svg docs/or_gate.export.svg
gs trace examples/or_gate_torch.py --fw torch --method jit-script --svg docs/or_gate.jit-script.svg
gs trace examples/or_gate_tf1.py --fw tf1 --svg docs/or_gate_tf1.tf1.svg
gs trace examples/data_dependent_torch.py --fw torch --method jit-script --svg docs/data_dependent.jit-script.svg
gs trace examples/data_dependent_torch.py --fw torch --method dynamo --svg docs/data_dependent.dynamo.svg
gs trace examples/control_flow_tf1.py --fw tf1 --svg docs/control_flow_tf1.tf1.svg
gs trace examples/control_flow_tf.py --fw tf --svg docs/control_flow_tf.tf-function.svg
gs trace examples/transformer_block_torch.py --fw torch --method export --svg docs/transformer_block.export.svg
gs trace examples/resnet50_torch.py --fw torch -o "$tmp/resnet50.json"
gs render "$tmp/resnet50.json" --collapse 1 -o docs/resnet50.collapse1.svg
gs trace examples/mlp_train_torch.py --fw torch --backward --svg docs/mlp_train.backward.svg
gs step examples/nan_torch.py --fw torch --until nonfinite --svg docs/step_nan_torch.svg
gs watch examples/diverge_torch.py --fw torch --steps 100 --svg docs/watch_diverge.svg
gs diff examples/edit_v1_torch.py examples/edit_v2_torch.py --fw torch --values --svg docs/diff_edit.svg
gs trace examples/llama70b_meta_torch.py --fw torch -o "$tmp/llama70b.json"
gs render "$tmp/llama70b.json" -o docs/llama70b.svg
