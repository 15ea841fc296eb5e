"""``python -m llmtrail`` runs the CLI."""

import sys

from llmtrail.cli import main

sys.exit(main())
