"""``python -m rxllm``: the ``rxllm`` command (see ``rxllm.cli``)."""

from rxllm.cli import main

raise SystemExit(main())
