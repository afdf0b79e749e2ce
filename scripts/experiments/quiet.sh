#!/usr/bin/env bash
# scripts/experiments/quiet.sh — run one command (a benchmark) in a "quiet window": every other process of
# this machine running at nice >= NICE (default 5: the background jobs of scripts/experiments/) is stopped
# (SIGSTOP) for the command's duration and continued (SIGCONT) after it, also when the command fails or is
# interrupted. Processes at nice < NICE keep running. Figures taken this way say so.
#
#   bash scripts/experiments/quiet.sh COMMAND [ARGS...]      (NICE=10 bash ... to spare jobs at nice 5-9)
set -u
[ $# -ge 1 ] || { echo "usage: quiet.sh COMMAND [ARGS...]" >&2; exit 2; }
nice_min="${NICE:-5}"
self=$$
pids=$(ps -eo pid=,ni= | awk -v m="$nice_min" -v s="$self" '$2 ~ /^-?[0-9]+$/ && $2 >= m && $1 != s {print $1}')
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids 2>/dev/null
echo "quiet.sh: stopped $(echo $pids | wc -w) process(es) at nice >= $nice_min" >&2
"$@"
