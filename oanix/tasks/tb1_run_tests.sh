#!/bin/bash
# The run-tests.sh Terminal-Bench 1's harness uses for a task without one.
uv run pytest $TEST_DIR/test_outputs.py -rA
