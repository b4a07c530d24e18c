"""`python -m lora_core ...`: the command-line interface (see lora_core/cli.py)."""
from .cli import main

raise SystemExit(main())
