#!/usr/bin/env bash
# Static checks of the observability stacks; they live beside the stacks they check.
exec "$(dirname "${BASH_SOURCE[0]}")/../../observability/tests/stacks.sh" "$@"
