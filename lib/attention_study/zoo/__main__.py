"""``python -m attention_study.zoo [show|train|verify|ship]``."""

from attention_study.zoo.cli import main

raise SystemExit(main())
