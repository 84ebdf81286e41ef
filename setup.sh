#!/usr/bin/env bash
# Set up graphscope for development on a fresh machine: Graphviz's `dot`, tmux (for the TUI's
# end-to-end test), and a virtual environment in .venv with every extra installed.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${need[*]} (Debian packages)" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# constraints.txt pins the CPU build of torch; an unpinned torch would pull CUDA.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
