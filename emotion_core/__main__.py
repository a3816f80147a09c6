"""``python -m emotion_core`` and the ``emotion-core`` script: one entry for both wings.

The runtime commands (analyze, explain, batch) run from ``emotion_core.cli``; the training and
evaluation commands are handed to ``emotion_core.training.cli``, imported only for them, so that
the runtime never loads a trainer or scikit-learn.
"""

from __future__ import annotations

import sys

from . import cli


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    runtime = argv[:1] == ["evaluate"] and len(argv) > 1 and argv[1] in cli.RUNTIME_EVALUATIONS
    if argv and argv[0] in cli.TRAINING_COMMANDS and not runtime:
        from .training import cli as training_cli  # the training wing, only when asked for

        return training_cli.main(argv)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
